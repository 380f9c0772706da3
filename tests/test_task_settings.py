"""Each task owns its training settings: its class declares them, a recipe names its task by carrying them, and
the stored config stays the one flat record (``TrainConfig.to_dict``) that every version of the trainer reads."""

from __future__ import annotations

import math

import pytest

from randmix_bench.errors import RandmixError
from randmix_bench.files import jsonable
from randmix_bench.recipes import RECIPES, SHARED_FIELDS, TASK_FIELDS, TASK_SETTINGS, TrainConfig, get_recipe
from randmix_bench.tasks import TASKS, ClassificationSettings, ShuffleSettings, task_for
from randmix_bench.vocab import Loss, TaskKind


def test_each_task_class_declares_its_settings() -> None:
    assert set(TASKS) == set(TASK_SETTINGS) == set(TaskKind)
    for kind, task in TASKS.items():
        assert task.name == kind and task.settings_type.kind is kind and TASK_SETTINGS[kind] is task.settings_type
    shared = SHARED_FIELDS & TASK_FIELDS
    assert not shared, f"{shared} named both by a task and by the shared settings"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_recipe_round_trips_through_the_flat_stored_layout(name: str) -> None:
    cfg = RECIPES[name]
    stored = jsonable(cfg.to_dict())  # as run.json and the checkpoint give it back
    assert TrainConfig.from_dict(stored) == cfg
    assert set(stored) == SHARED_FIELDS | TASK_FIELDS | {"task"} and stored["task"] == cfg.task
    for kind, settings in TASK_SETTINGS.items():  # its own settings as set, every other task's at the defaults
        own = cfg.task_settings if kind is cfg.task else settings()
        assert {k: stored[k] for k in settings.names()} == own.to_dict()
    assert type(task_for(cfg.validate())) is TASKS[cfg.task]


def test_overrides_go_to_the_task_that_owns_them() -> None:
    quick, unshuffle = get_recipe("quick"), get_recipe("unshuffle-quick")
    changed = unshuffle.override(loss="l1", permutation_seed=7)
    assert changed.task_settings == ShuffleSettings(Loss.L1, 7) and changed.settings_of(ShuffleSettings).loss is Loss.L1
    assert quick.override(label_smoothing=0.2).task_settings == ClassificationSettings(0.2)
    assert quick.override(loss="mse", permutation_seed=0) == quick  # another task's defaults: nothing to refuse
    switched = quick.override(task="shuffle", model="randmix_unshuffler_tiny")
    assert switched.task is TaskKind.SHUFFLE and switched.task_settings == ShuffleSettings()
    with pytest.raises(TypeError, match="a classification config has no ShuffleSettings"):
        quick.settings_of(ShuffleSettings)  # a task class reading another's settings is a bug, not bad input


@pytest.mark.parametrize(("recipe", "changes", "error"), [
    ("quick", {"loss": "l1"}, r"^loss='l1' does not apply to the classification task; drop --loss$"),
    ("unshuffle-quick", {"label_smoothing": 0.1},
     r"^label_smoothing=0.1 does not apply to the shuffle task; drop --label-smoothing$"),
    ("quick", {"label_smoothing": 1.0}, r"^label_smoothing must be in \[0, 1\), got 1.0$"),
    ("quick", {"label_smoothing": -0.1}, r"^label_smoothing must be in \[0, 1\), got -0.1$"),
    ("quick", {"label_smoothing": math.inf}, r"^label_smoothing must be a finite number, got inf"),
    ("unshuffle-quick", {"permutation_seed": 2**32}, r"^permutation_seed must be in 0..4294967295, got 4294967296$"),
    ("unshuffle-quick", {"loss": "huber"}, r"^unknown loss 'huber'; valid choices: mse, l1$"),
    ("quick", {"task": "segmentation"}, r"^unknown task 'segmentation'; valid choices: classification, shuffle$"),
    ("quick", {"task": "shuffle"}, r"randmix_convmixer_tiny is a classifier; pixel-shuffle runs need"),
    ("quick", {"batchsize": 64}, r"^unknown TrainConfig field\(s\) batchsize; valid: batch_size, "),
])
def test_a_bad_override_is_one_line(recipe: str, changes: dict, error: str) -> None:
    with pytest.raises(RandmixError, match=error):
        get_recipe(recipe).override(**changes)


@pytest.mark.parametrize(("change", "error"), [
    ({"batchsize": 64}, "unknown TrainConfig field(s) batchsize"),  # was a TypeError with a traceback
    ({"permutation_seed": 3}, "permutation_seed=3 does not apply to the classification task"),
    ({"task": None}, "unknown task None"),
])
def test_an_altered_stored_config_is_refused_in_one_line(change: dict, error: str) -> None:
    with pytest.raises(RandmixError, match="^" + error.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig.from_dict({**get_recipe("quick").to_dict(), **change})
