"""What a model is trained to do: one small class per task, chosen by the training config.

As timm picks a model class by name, :func:`task_for` picks the task class by ``TrainConfig.task`` and
builds it from the config's settings (``TrainConfig.build_model`` then builds the config's untrained model for
that task and dataset). Each task class declares the settings it adds to a config (``settings_type``:
:class:`ClassificationSettings`, :class:`ShuffleSettings`); a recipe names its task by carrying them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from randmix_bench.tasks.base import Task, TaskSettings
from randmix_bench.tasks.classification import ClassificationSettings, ClassificationTask, accuracy, predict
from randmix_bench.tasks.shuffle import ShuffleSettings, ShuffleTask
from randmix_bench.vocab import TaskKind

if TYPE_CHECKING:
    from randmix_bench.recipes import TrainConfig

__all__ = ["Task", "TaskSettings", "TASKS", "ClassificationTask", "ClassificationSettings", "ShuffleTask",
           "ShuffleSettings", "task_for", "accuracy", "predict"]

TASKS: dict[TaskKind, type[Task]] = {TaskKind.CLASSIFICATION: ClassificationTask, TaskKind.SHUFFLE: ShuffleTask}


def task_for(cfg: TrainConfig) -> Task:
    """The task ``cfg.task`` names, built from ``cfg``'s settings (a shuffle task sizes its permutation from
    the dataset)."""
    return TASKS[cfg.task].for_config(cfg)

