"""Training recipes: every hyperparameter of a run in one dataclass, the named recipes in one dict.

A recipe is a complete :class:`TrainConfig`: the settings every run shares, and its task's own settings
(``task_settings``: :class:`~randmix_bench.tasks.ClassificationSettings` or
:class:`~randmix_bench.tasks.ShuffleSettings`, declared by the task class), which also say what the task is.
The CLI starts from one and overrides fields (``randmix train --recipe convmixer-cifar10 --epochs 10``).
``run.json`` and the checkpoint record the resolved config in one flat layout (:meth:`TrainConfig.to_dict`), so
a run is reproduced from its record alone; records written before the config carried its task are read through
:func:`complete_config`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from randmix_bench.data import DatasetInfo, check_dataset_name
from randmix_bench.errors import RandmixError, check_finite_fields, check_seed, choices_error
from randmix_bench.files import jsonable
from randmix_bench.freezing import DEFAULT_SMOOTH_SIGMA
from randmix_bench.loss_curve import MAX_EPOCHS
from randmix_bench.models import create_model, list_models, model_task
from randmix_bench.tasks import TASKS, ClassificationSettings, ShuffleSettings, Task, TaskSettings
from randmix_bench.tasks.base import S
from randmix_bench.vocab import Choice, Mixing, Optimizer, TaskKind

__all__ = ["TrainConfig", "RECIPES", "get_recipe", "parse_lr_schedule", "RUNTIME_FIELDS", "NAMED_FIELDS",
           "TASK_SETTINGS", "complete_config"]

# The public convmixer-cifar10 schedule: 0 -> peak at 2/5 -> peak/20 at 4/5 -> 0 at the end.
ONE_CYCLE_CONVMIXER: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.4, 1.0), (0.8, 0.05), (1.0, 0.0))
WARMUP_LINEAR_DECAY: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.1, 1.0), (1.0, 0.0))  # the unshufflers'

MAX_RANDAUGMENT_N = 16
"""The most RandAugment ops per image (recipes use 1-3; each is a pass over the batch)."""
RUNTIME_FIELDS = frozenset({"data_dir", "compile", "eval_batch_size"})
"""Fields that change how a run executes, not what it computes: they may differ on ``--resume``."""
NAMED_FIELDS: dict[str, type[Choice]] = {"mixing": Mixing, "optimizer": Optimizer}
"""Fields that hold a vocabulary member: text for them is parsed where it arrives (the command line's options,
:meth:`TrainConfig.from_dict` for a stored record), never inside. A task's settings parse their own
(``TaskSettings.from_values``)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (the device and the run folder are not part of it)."""

    recipe: str  # the recipe this config started from, recorded for readers
    model: str  # a randmix timm model name
    dataset: str  # a name from randmix_bench.data.DATASETS, or an image folder / .tar.gz
    epochs: int
    batch_size: int  # global: split across DDP ranks
    lr: float  # peak learning rate
    weight_decay: float
    task_settings: TaskSettings = ClassificationSettings()  # the task's own settings; their class names the task
    optimizer: Optimizer = Optimizer.ADAMW
    momentum: float = 0.9  # SGD (Nesterov) only
    lr_schedule: tuple[tuple[float, float], ...] = ONE_CYCLE_CONVMIXER  # (fraction of steps, x peak lr), linear between
    decay_norm_bias: bool = True  # False: no weight decay on 1-d parameters (norm scales/shifts, biases)
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    crop_padding: int = 0  # random crop after zero padding by this many pixels; 0 = off
    flip: bool = True  # random horizontal flip
    randaugment_n: int = 0  # RandAugment: ops per image; 0 = off
    randaugment_m: int = 0  # RandAugment: magnitude, 0..30 (torchvision's 31 bins)
    mixing: Mixing = Mixing.FULL
    mixer_seed: int = 0  # seed of the frozen random mixers
    smooth_sigma: float = DEFAULT_SMOOTH_SIGMA  # chans-smooth only
    seed: int = 0  # learned-weight init, data order and augmentation
    data_dir: str | None = None
    eval_batch_size: int = 1000
    compile: bool = False  # torch.compile the model (CUDA)

    @property
    def task(self) -> TaskKind:
        """What the model is trained to do: the kind of :attr:`task_settings`."""
        return self.task_settings.kind

    def settings_of(self, kind: type[S]) -> S:
        """The task settings as ``kind``, what a task class reads (a config of another task here is a bug)."""
        if not isinstance(self.task_settings, kind):
            raise TypeError(f"a {self.task} config has no {kind.__name__}")
        return self.task_settings

    def validate(self) -> TrainConfig:
        """Raise a one-line :class:`RandmixError` naming the first bad field; return self."""
        self._check_finite()
        self.task_settings.validate()
        for name, kind in NAMED_FIELDS.items():
            if not isinstance(getattr(self, name), kind):  # a Python caller's text, which would compare unequal
                raise TypeError(f"TrainConfig.{name} must be a {kind.__name__}, got {getattr(self, name)!r}; parse "
                                f"text where it arrives: {kind.__name__}.parse")
        check_dataset_name(self.dataset)
        if self.model not in list_models():
            raise RandmixError(f"unknown model {self.model!r}; valid choices: {', '.join(list_models())}")
        self._check_model_task()
        checks = [
            (1 <= self.epochs <= MAX_EPOCHS, f"epochs must be in 1..{MAX_EPOCHS}, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}"),
            (self.crop_padding >= 0, f"crop_padding must be >= 0, got {self.crop_padding}"),
            (0 <= self.randaugment_n <= MAX_RANDAUGMENT_N,
             f"randaugment_n must be in 0..{MAX_RANDAUGMENT_N}, got {self.randaugment_n}"),
            (0 <= self.randaugment_m <= 30, f"randaugment_m must be in 0..30, got {self.randaugment_m}"),
            (self.smooth_sigma >= 0, f"smooth_sigma must be >= 0, got {self.smooth_sigma}"),
        ]
        for name in ("seed", "mixer_seed"):
            check_seed(name, getattr(self, name))
        for ok, message in checks:
            if not ok:
                raise RandmixError(message)
        xs = [x for x, _ in self.lr_schedule]
        if len(xs) < 2 or xs[0] != 0 or xs[-1] != 1 or any(b <= a for a, b in pairwise(xs)):
            raise RandmixError("lr_schedule must start at fraction 0, end at 1 and increase, "
                               f"got {format_lr_schedule(self.lr_schedule)}")
        if any(y < 0 for _, y in self.lr_schedule):
            raise RandmixError(f"lr_schedule multipliers must be >= 0, got {format_lr_schedule(self.lr_schedule)}")
        return self

    def _check_finite(self) -> None:
        check_finite_fields(self)
        if not all(math.isfinite(v) for point in self.lr_schedule for v in point):
            raise RandmixError(f"lr_schedule must hold finite numbers, got {format_lr_schedule(self.lr_schedule)}; "
                               "pass a finite --lr-schedule, e.g. 0:0,0.4:1,0.8:0.05,1:0")

    def _check_model_task(self) -> None:
        if model_task(self.model) is not self.task:
            if self.task is TaskKind.SHUFFLE:
                raise RandmixError(f"{self.model} is a classifier; pixel-shuffle runs need an image-to-image model "
                                   "(randmix_unshuffler_*)")
            raise RandmixError(f"{self.model} is an image-to-image model; train it with a shuffle recipe "
                               "(`randmix shuffle train`)")

    def override(self, **changes: Any) -> TrainConfig:
        """A copy with the given fields replaced (``None`` values ignored), validated. Fields are named as in
        :meth:`to_dict`: a task's settings by their own names (``label_smoothing=0.1``), the task by ``task``."""
        given = {k: v for k, v in changes.items() if v is not None}
        return TrainConfig._from_flat({**self.to_dict(), **given}).validate()

    def to_dict(self) -> dict[str, Any]:
        """The stored layout (run.json's ``config``, resume.pt's, a checkpoint's ``train``), flat as it has been
        since the config carried its task: the shared settings, ``task``, and every task's settings by name, the
        other tasks' at their defaults. A record therefore reads the same in every version, and a run trained
        again writes the same bytes."""
        shared = dataclasses.asdict(self)
        del shared["task_settings"]
        every_task = {k: v for cls in TASK_SETTINGS.values() for k, v in cls().to_dict().items()}
        return {**shared, "lr_schedule": [list(p) for p in self.lr_schedule], "task": str(self.task), **every_task,
                **self.task_settings.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """A stored record in :meth:`to_dict`'s layout (older ones completed first by :func:`complete_config`) as a
        config: its text parsed, not validated."""
        named = {name: kind.parse(d[name]) for name, kind in NAMED_FIELDS.items() if name in d}
        return cls._from_flat({**d, **named})

    @classmethod
    def _from_flat(cls, d: Mapping[str, Any]) -> TrainConfig:
        """A config from values in :meth:`to_dict`'s layout, the task's settings routed to their class; a setting of
        another task than ``task`` must keep that task's default (so a run never records a setting it did not use)."""
        values = dict(d)
        kind = TaskKind.parse(values.pop("task", TaskKind.CLASSIFICATION))
        task_values = {k: values.pop(k) for k in list(values) if k in TASK_FIELDS}
        unknown = sorted(set(values) - SHARED_FIELDS)
        if unknown:
            valid = sorted(SHARED_FIELDS | TASK_FIELDS | {"task"})
            raise RandmixError(f"unknown TrainConfig field(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
        if "lr_schedule" in values:
            values["lr_schedule"] = tuple(tuple(p) for p in values["lr_schedule"])
        return cls(**values, task_settings=_task_settings(kind, task_values))

    def lr_at(self, step: int, total_steps: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based): the schedule at ``(step + 1) / total``.

        Like the public convmixer-cifar10 loop, the schedule is evaluated after the step's progress,
        so the first step does not run at lr 0.
        """
        t = (step + 1) / total_steps
        for (x0, y0), (x1, y1) in pairwise(self.lr_schedule):
            if t <= x1:
                return self.lr * (y0 + (y1 - y0) * (t - x0) / (x1 - x0))
        return self.lr * self.lr_schedule[-1][1]

    def build_model(self, task: Task, info: DatasetInfo) -> tuple[nn.Module, dict[str, Any]]:
        """This config's untrained model for ``task`` on data like ``info``, its learned weights drawn from
        :attr:`seed`, and the constructor arguments that rebuild it (what a checkpoint records, as JSON gives
        them back). The trainer, the benchmarks and the tests all build their models here."""
        mixing = {"mixing": self.mixing, "mixer_seed": self.mixer_seed, "smooth_sigma": self.smooth_sigma}
        kwargs = jsonable({**mixing, **task.model_kwargs(info)})
        torch.manual_seed(self.seed)
        return create_model(self.model, **{**kwargs, **mixing}), kwargs  # the model gets the Mixing member itself


TASK_SETTINGS: dict[TaskKind, type[TaskSettings]] = {kind: task.settings_type for kind, task in TASKS.items()}
"""Each task's settings class, as its task class declares it."""
TASK_FIELDS = frozenset(name for cls in TASK_SETTINGS.values() for name in cls.names())
SHARED_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig)) - {"task_settings"}


def _task_settings(kind: TaskKind, values: Mapping[str, Any]) -> TaskSettings:
    """``kind``'s settings from flat values by name; another task's settings must hold that task's defaults."""
    own = TASK_SETTINGS[kind]
    for cls in TASK_SETTINGS.values():
        defaults = cls().to_dict()
        for name in set(cls.names()) - set(own.names()):
            if name in values and values[name] != defaults[name]:
                raise RandmixError(f"{name}={values[name]!r} does not apply to the {kind} task; "
                                   f"drop --{name.replace('_', '-')}")
    return own.from_values({k: v for k, v in values.items() if k in own.names()})


def complete_config(config: dict[str, Any], task: dict[str, Any] | None) -> dict[str, Any]:
    """A stored training config (run.json's ``config``, resume.pt's, the checkpoint's ``train``) in the current
    layout. Records written before the config carried its task hold ``task``, ``loss`` and ``permutation_seed``
    only in the task record beside it (``Task.config()``: the shuffle task's, or ``{"task": "classification",
    "label_smoothing": ...}``): they are filled from there, else from the defaults. New records pass unchanged."""
    defaults = {"task": str(TaskKind.CLASSIFICATION), **ShuffleSettings().to_dict()}
    record = task if isinstance(task, dict) else {}
    moved = {name: record.get(name, defaults[name]) for name in ("task", "loss", "permutation_seed")}
    return {**moved, **config}


def parse_lr_schedule(text: str) -> tuple[tuple[float, float], ...]:
    """``"0:0,0.4:1,0.8:0.05,1:0"`` -> ((0, 0), (0.4, 1), (0.8, 0.05), (1, 0))."""
    try:
        return tuple((float(x), float(y)) for x, y in (p.split(":") for p in text.split(",")))
    except ValueError:
        raise RandmixError(
            f"bad lr schedule {text!r}; expected fraction:multiplier pairs, e.g. 0:0,0.4:1,0.8:0.05,1:0"
        ) from None


def format_lr_schedule(points: tuple[tuple[float, float], ...]) -> str:
    return ",".join(f"{x:g}:{y:g}" for x, y in points)


def _small_tier(name: str, model: str, dataset: str, crop_padding: int) -> TrainConfig:
    """One small-tier recipe: every small model and dataset trains alike, only the crop follows the image size."""
    return TrainConfig(
        recipe=name, model=model, dataset=dataset, epochs=3, batch_size=128, lr=0.01, weight_decay=0.005,
        optimizer=Optimizer.ADAMW, lr_schedule=((0.0, 0.0), (0.3, 1.0), (1.0, 0.0)), grad_clip=1.0,
        crop_padding=crop_padding, flip=True, eval_batch_size=500,
    )


SHUFFLE = ShuffleSettings()  # the unshuffler recipes': loss mse, permutation seed 0

# The medium tier: a width-64, depth-8 unshuffler (receptive radius 32), the CPU recipe for longer. 4 epochs, an
# equal budget for every run: its loss still falls there (seed 0 of `full`: -7.1 % over the last fifth by the fitted
# line; -7.3 %, and -2.7 % at 2 epochs, between the window's end points, the rule until 2026-12-06), which
# FINDINGS says beside each claim-3 verdict (README, benchmarks/RESULTS.md, #21).
UNSHUFFLE_MEDIUM = TrainConfig(
    recipe="unshuffle-fashion-mnist-medium", task_settings=SHUFFLE, model="randmix_unshuffler_64_8",
    dataset="fashion-mnist", epochs=4, batch_size=64, lr=0.005, weight_decay=0.0, lr_schedule=WARMUP_LINEAR_DECAY,
    grad_clip=1.0, flip=True, eval_batch_size=500,
)

RECIPES: dict[str, TrainConfig] = {
    # locuslab/convmixer-cifar10's 92.5% command: train.py --lr-max=0.05 --ra-n=2 --ra-m=12 --wd=0.005
    # --scale=1.0 --jitter=0 --reprob=0. Its crop (RandomResizedCrop at scale 1, ratio 1) is the identity;
    # flip, RandAugment(2, 12); AdamW on every parameter; plain cross-entropy; clipping only with
    # --clip-norm, which that command does not pass (add --grad-clip 1 to clip as train.py would).
    "convmixer-cifar10": TrainConfig(
        recipe="convmixer-cifar10", model="randmix_convmixer_256_8", dataset="cifar10",
        epochs=25, batch_size=512, lr=0.05, weight_decay=0.005, optimizer=Optimizer.ADAMW,
        lr_schedule=ONE_CYCLE_CONVMIXER, decay_norm_bias=True, grad_clip=0.0,
        task_settings=ClassificationSettings(label_smoothing=0.0), crop_padding=0, flip=True, randaugment_n=2,
        randaugment_m=12,
    ),
    # A standard CIFAR ResNet-18 recipe (not from the paper): SGD + Nesterov, batch 512 at lr 0.2
    # (0.1 per 256), wd 5e-4 off norms and biases, pad-4 crop + flip, label smoothing 0.1, one-cycle.
    "resnet18-cifar10": TrainConfig(
        recipe="resnet18-cifar10", model="randmix_resnet18", dataset="cifar10",
        epochs=40, batch_size=512, lr=0.2, weight_decay=5e-4, optimizer=Optimizer.SGD, momentum=0.9,
        lr_schedule=((0.0, 0.0), (0.15, 1.0), (1.0, 0.0)), decay_norm_bias=False, grad_clip=0.0,
        task_settings=ClassificationSettings(label_smoothing=0.1), crop_padding=4, flip=True,
    ),
    # The paper tier on the datasets here (one recipe per architecture and dataset, every variant alike):
    # the CIFAR recipes on cifar10-jpeg unchanged; on Fashion-MNIST without RandAugment (its ops assume
    # natural colour images), with a 2-pixel crop instead.
    "convmixer-cifar10-jpeg": TrainConfig(
        recipe="convmixer-cifar10-jpeg", model="randmix_convmixer_256_8", dataset="cifar10-jpeg",
        epochs=25, batch_size=512, lr=0.05, weight_decay=0.005, optimizer=Optimizer.ADAMW,
        lr_schedule=ONE_CYCLE_CONVMIXER, decay_norm_bias=True, crop_padding=0, flip=True, randaugment_n=2,
        randaugment_m=12,
    ),
    "convmixer-fashion-mnist": TrainConfig(
        recipe="convmixer-fashion-mnist", model="randmix_convmixer_256_8", dataset="fashion-mnist",
        epochs=25, batch_size=512, lr=0.05, weight_decay=0.005, optimizer=Optimizer.ADAMW,
        lr_schedule=ONE_CYCLE_CONVMIXER, decay_norm_bias=True, crop_padding=2, flip=True,
    ),
    # The medium tier (2-core CPU): the Fashion-MNIST recipe above on ConvMixer-64/8, for 10 epochs.
    "convmixer64-fashion-mnist": TrainConfig(
        recipe="convmixer64-fashion-mnist", model="randmix_convmixer_64_8", dataset="fashion-mnist",
        epochs=10, batch_size=512, lr=0.05, weight_decay=0.005, optimizer=Optimizer.ADAMW,
        lr_schedule=ONE_CYCLE_CONVMIXER, decay_norm_bias=True, crop_padding=2, flip=True,
    ),
    "resnet18-cifar10-jpeg": TrainConfig(
        recipe="resnet18-cifar10-jpeg", model="randmix_resnet18", dataset="cifar10-jpeg",
        epochs=40, batch_size=512, lr=0.2, weight_decay=5e-4, optimizer=Optimizer.SGD, momentum=0.9,
        lr_schedule=((0.0, 0.0), (0.15, 1.0), (1.0, 0.0)), decay_norm_bias=False,
        task_settings=ClassificationSettings(label_smoothing=0.1), crop_padding=4, flip=True,
    ),
    "resnet18-fashion-mnist": TrainConfig(
        recipe="resnet18-fashion-mnist", model="randmix_resnet18", dataset="fashion-mnist",
        epochs=20, batch_size=512, lr=0.2, weight_decay=5e-4, optimizer=Optimizer.SGD, momentum=0.9,
        lr_schedule=((0.0, 0.0), (0.15, 1.0), (1.0, 0.0)), decay_norm_bias=False,
        task_settings=ClassificationSettings(label_smoothing=0.1), crop_padding=2, flip=True,
    ),
    # The small tier (a 2-core CPU, minutes per run): short one-cycle AdamW runs of the small models.
    **{
        name: _small_tier(name, model, dataset, crop)
        for name, model, dataset, crop in (
            ("convmixer-small-fmnist", "randmix_convmixer_small", "fashion-mnist", 1),
            ("convmixer-small-cifar10-jpeg", "randmix_convmixer_small", "cifar10-jpeg", 2),
            ("resnet-small-fmnist", "randmix_resnet_small", "fashion-mnist", 1),
        )
    },
    # Seconds on a CPU: the tiny ConvMixer on the synthetic dataset, for smoke runs and tests. Synthetic
    # classes are noise templates, so a flip makes a new pattern: a 1-pixel crop is the only augmentation.
    "quick": TrainConfig(
        recipe="quick", model="randmix_convmixer_tiny", dataset="synthetic",
        epochs=2, batch_size=128, lr=0.03, weight_decay=0.005, optimizer=Optimizer.ADAMW,
        lr_schedule=((0.0, 0.0), (0.25, 1.0), (1.0, 0.0)), grad_clip=1.0, crop_padding=1, flip=False,
        eval_batch_size=512,
    ),
    # Pixel un-shuffling. Seconds on a CPU: the tiny unshuffler on synthetic data, for smoke runs and tests.
    "unshuffle-quick": TrainConfig(
        recipe="unshuffle-quick", task_settings=SHUFFLE, model="randmix_unshuffler_tiny", dataset="synthetic",
        epochs=2, batch_size=128, lr=0.01, weight_decay=0.0, lr_schedule=WARMUP_LINEAR_DECAY, grad_clip=1.0,
        flip=False, eval_batch_size=256,
    ),
    # Minutes on a 2-core CPU (the README's measurement): one epoch of Fashion-MNIST on a small
    # unshuffler whose receptive field (radius 7 * 4 = 28) spans a 28x28 image.
    "unshuffle-fashion-mnist-cpu": TrainConfig(
        recipe="unshuffle-fashion-mnist-cpu", task_settings=SHUFFLE, model="randmix_unshuffler_16_7",
        dataset="fashion-mnist", epochs=1, batch_size=64, lr=0.005, weight_decay=0.0, lr_schedule=WARMUP_LINEAR_DECAY,
        grad_clip=1.0, flip=True, eval_batch_size=500,
    ),
    # The small tier (randmix reproduce --tier small): the same run with the half-cost width-8 unshuffler.
    "unshuffle-fashion-mnist-small": TrainConfig(
        recipe="unshuffle-fashion-mnist-small", task_settings=SHUFFLE, model="randmix_unshuffler_8_7",
        dataset="fashion-mnist", epochs=1, batch_size=64, lr=0.005, weight_decay=0.0, lr_schedule=WARMUP_LINEAR_DECAY,
        grad_clip=1.0, flip=True, eval_batch_size=500,
    ),
    "unshuffle-fashion-mnist-medium": UNSHUFFLE_MEDIUM,
    # The same unshuffler and recipe for 5x the epochs: the medium tier's claim-3 study trained towards a flat loss
    # (issue #21), about 50 h of one core for its 6 runs, over several sittings; minutes a run on a GPU.
    "unshuffle-fashion-mnist-medium-long": dataclasses.replace(
        UNSHUFFLE_MEDIUM, recipe="unshuffle-fashion-mnist-medium-long", epochs=20),
    # The paper's large network (width 512, depth 16, kernel 7) on the MNIST family and CIFAR-10 (GPU). The paper
    # gives no training hyperparameters; these are the CPU recipe's, scaled up, and not yet run on a GPU here.
    **{
        f"unshuffle-{dataset}": TrainConfig(
            recipe=f"unshuffle-{dataset}", task_settings=SHUFFLE, model="randmix_unshuffler_512_16", dataset=dataset,
            epochs=20, batch_size=128, lr=0.002, weight_decay=0.0, lr_schedule=WARMUP_LINEAR_DECAY, grad_clip=1.0,
            flip=True, eval_batch_size=500,
        )
        for dataset in ("mnist", "fashion-mnist", "cifar10", "cifar10-jpeg")
    },
}


def get_recipe(name: str, task: str | None = None) -> TrainConfig:
    """The named recipe (one of ``task``'s when given), or a one-line error listing the valid names."""
    names = [n for n, cfg in RECIPES.items() if task is None or cfg.task == task]
    if name not in names:
        raise choices_error(f"{task} recipe" if task else "recipe", name, names)
    return RECIPES[name]
