"""Training recipes: every hyperparameter of a run in one dataclass, the named recipes in one dict.

A recipe is a complete :class:`TrainConfig`, task included (classification or pixel un-shuffling); the CLI
starts from one and overrides fields (``randmix train --recipe convmixer-cifar10 --epochs 10``). ``run.json``
and the checkpoint record the resolved config, so a run is reproduced from its record alone; records written
before the config carried its task are read through :func:`complete_config`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from randmix_bench.data import check_dataset_name
from randmix_bench.errors import RandmixError, check_seed, choices_error
from randmix_bench.freezing import DEFAULT_SMOOTH_SIGMA
from randmix_bench.models import list_models, model_task
from randmix_bench.vocab import Choice, Loss, Mixing, Optimizer, TaskKind

__all__ = ["TrainConfig", "RECIPES", "get_recipe", "parse_lr_schedule", "RUNTIME_FIELDS", "TASK_FIELDS", "NAMED_FIELDS",
           "complete_config"]

# The public convmixer-cifar10 schedule: 0 -> peak at 2/5 -> peak/20 at 4/5 -> 0 at the end.
ONE_CYCLE_CONVMIXER: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.4, 1.0), (0.8, 0.05), (1.0, 0.0))
WARMUP_LINEAR_DECAY: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.1, 1.0), (1.0, 0.0))  # the unshufflers'

RUNTIME_FIELDS = frozenset({"data_dir", "compile", "eval_batch_size"})
"""Fields that change how a run executes, not what it computes: they may differ on ``--resume``."""
NAMED_FIELDS: dict[str, type[Choice]] = {"mixing": Mixing, "optimizer": Optimizer}
"""Fields that hold a vocabulary member: text for them is parsed where it arrives (the command line's options,
:meth:`TrainConfig.from_dict` for a stored record), never inside."""


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
    task: str = "classification"  # a TaskKind: what the model is trained to do (randmix_bench.tasks)
    optimizer: Optimizer = Optimizer.ADAMW
    momentum: float = 0.9  # SGD (Nesterov) only
    lr_schedule: tuple[tuple[float, float], ...] = ONE_CYCLE_CONVMIXER  # (fraction of steps, x peak lr), linear between
    decay_norm_bias: bool = True  # False: no weight decay on 1-d parameters (norm scales/shifts, biases)
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    label_smoothing: float = 0.0  # classification: of the cross-entropy
    loss: str = "mse"  # shuffle: the reconstruction Loss (classification always trains with cross-entropy)
    permutation_seed: int = 0  # shuffle: names the pixel permutation (randmix_bench.tasks.shuffle)
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

    def validate(self) -> TrainConfig:
        """Raise a one-line :class:`RandmixError` naming the first bad field; return self."""
        self._check_finite()
        for name, kind in NAMED_FIELDS.items():
            if not isinstance(getattr(self, name), kind):  # a Python caller's text, which would compare unequal
                raise TypeError(f"TrainConfig.{name} must be a {kind.__name__}, got {getattr(self, name)!r}; parse "
                                f"text where it arrives: {kind.__name__}.parse")
        check_dataset_name(self.dataset)
        if self.model not in list_models():
            raise RandmixError(f"unknown model {self.model!r}; valid choices: {', '.join(list_models())}")
        self._check_task()
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.crop_padding >= 0, f"crop_padding must be >= 0, got {self.crop_padding}"),
            (self.randaugment_n >= 0, f"randaugment_n must be >= 0, got {self.randaugment_n}"),
            (0 <= self.randaugment_m <= 30, f"randaugment_m must be in 0..30, got {self.randaugment_m}"),
            (self.smooth_sigma >= 0, f"smooth_sigma must be >= 0, got {self.smooth_sigma}"),
        ]
        for name in ("seed", "mixer_seed", "permutation_seed"):
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
        """NaN slips through every ``>``/``<`` check and inf through most: one rule for every float instead."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise RandmixError(f"{f.name} must be a finite number, got {value}; "
                                   f"pass a finite --{f.name.replace('_', '-')}")
        if not all(math.isfinite(v) for point in self.lr_schedule for v in point):
            raise RandmixError(f"lr_schedule must hold finite numbers, got {format_lr_schedule(self.lr_schedule)}; "
                               "pass a finite --lr-schedule, e.g. 0:0,0.4:1,0.8:0.05,1:0")

    def _check_task(self) -> None:
        """The model is one of the task's, and the other task's settings stay at their defaults (so a run never
        records a setting it did not use)."""
        task = TaskKind.parse(self.task)
        Loss.parse(self.loss)  # the one "unknown loss" error
        if model_task(self.model) is not task:
            if task is TaskKind.SHUFFLE:
                raise RandmixError(f"{self.model} is a classifier; pixel-shuffle runs need an image-to-image model "
                                   "(randmix_unshuffler_*)")
            raise RandmixError(f"{self.model} is an image-to-image model; train it with a shuffle recipe "
                               "(`randmix shuffle train`)")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in (name for kind, names in TASK_FIELDS.items() if kind is not task for name in names):
            if getattr(self, name) != defaults[name]:
                raise RandmixError(f"{name}={getattr(self, name)!r} does not apply to the {task} task; "
                                   f"drop --{name.replace('_', '-')}")

    def override(self, **changes: Any) -> TrainConfig:
        """A copy with the given fields replaced (``None`` values ignored), validated."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise RandmixError(f"unknown TrainConfig field(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None}).validate()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lr_schedule"] = [list(p) for p in self.lr_schedule]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A stored record (run.json's ``config``, the checkpoint's ``train``) as a config: its text parsed."""
        named = {name: kind.parse(d[name]) for name, kind in NAMED_FIELDS.items() if name in d}
        return cls(**dict(d, lr_schedule=tuple(tuple(p) for p in d["lr_schedule"]), **named))

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


TASK_FIELDS: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.CLASSIFICATION: ("label_smoothing",),
    TaskKind.SHUFFLE: ("loss", "permutation_seed"),
}
"""The settings of each task; a config of one task keeps the other's at their defaults."""


def complete_config(config: dict[str, Any], task: dict[str, Any] | None) -> dict[str, Any]:
    """A stored training config (run.json's ``config``, resume.pt's, the checkpoint's ``train``) in the current
    layout. Records written before the config carried its task hold ``task``, ``loss`` and ``permutation_seed``
    only in the task record beside it (``Task.config()``: the shuffle task's, or ``{"task": "classification",
    "label_smoothing": ...}``): they are filled from there, else from the defaults. New records pass unchanged."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
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


RECIPES: dict[str, TrainConfig] = {
    # locuslab/convmixer-cifar10's 92.5% command: train.py --lr-max=0.05 --ra-n=2 --ra-m=12 --wd=0.005
    # --scale=1.0 --jitter=0 --reprob=0. Its crop (RandomResizedCrop at scale 1, ratio 1) is the identity;
    # flip, RandAugment(2, 12); AdamW on every parameter; plain cross-entropy; clipping only with
    # --clip-norm, which that command does not pass (add --grad-clip 1 to clip as train.py would).
    "convmixer-cifar10": TrainConfig(
        recipe="convmixer-cifar10", model="randmix_convmixer_256_8", dataset="cifar10",
        epochs=25, batch_size=512, lr=0.05, weight_decay=0.005, optimizer=Optimizer.ADAMW,
        lr_schedule=ONE_CYCLE_CONVMIXER, decay_norm_bias=True, grad_clip=0.0, label_smoothing=0.0,
        crop_padding=0, flip=True, randaugment_n=2, randaugment_m=12,
    ),
    # A standard CIFAR ResNet-18 recipe (not from the paper): SGD + Nesterov, batch 512 at lr 0.2
    # (0.1 per 256), wd 5e-4 off norms and biases, pad-4 crop + flip, label smoothing 0.1, one-cycle.
    "resnet18-cifar10": TrainConfig(
        recipe="resnet18-cifar10", model="randmix_resnet18", dataset="cifar10",
        epochs=40, batch_size=512, lr=0.2, weight_decay=5e-4, optimizer=Optimizer.SGD, momentum=0.9,
        lr_schedule=((0.0, 0.0), (0.15, 1.0), (1.0, 0.0)), decay_norm_bias=False, grad_clip=0.0,
        label_smoothing=0.1, crop_padding=4, flip=True,
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
        lr_schedule=((0.0, 0.0), (0.15, 1.0), (1.0, 0.0)), decay_norm_bias=False, label_smoothing=0.1,
        crop_padding=4, flip=True,
    ),
    "resnet18-fashion-mnist": TrainConfig(
        recipe="resnet18-fashion-mnist", model="randmix_resnet18", dataset="fashion-mnist",
        epochs=20, batch_size=512, lr=0.2, weight_decay=5e-4, optimizer=Optimizer.SGD, momentum=0.9,
        lr_schedule=((0.0, 0.0), (0.15, 1.0), (1.0, 0.0)), decay_norm_bias=False, label_smoothing=0.1,
        crop_padding=2, flip=True,
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
    # Pixel un-shuffling (task "shuffle"; loss mse, permutation seed 0). Seconds on a CPU: the tiny unshuffler
    # on synthetic data, for smoke runs and tests.
    "unshuffle-quick": TrainConfig(
        recipe="unshuffle-quick", task="shuffle", model="randmix_unshuffler_tiny", dataset="synthetic",
        epochs=2, batch_size=128, lr=0.01, weight_decay=0.0, lr_schedule=WARMUP_LINEAR_DECAY, grad_clip=1.0,
        flip=False, eval_batch_size=256,
    ),
    # Minutes on a 2-core CPU (the README's measurement): one epoch of Fashion-MNIST on a small
    # unshuffler whose receptive field (radius 7 * 4 = 28) spans a 28x28 image.
    "unshuffle-fashion-mnist-cpu": TrainConfig(
        recipe="unshuffle-fashion-mnist-cpu", task="shuffle", model="randmix_unshuffler_16_7", dataset="fashion-mnist",
        epochs=1, batch_size=64, lr=0.005, weight_decay=0.0, lr_schedule=WARMUP_LINEAR_DECAY, grad_clip=1.0,
        flip=True, eval_batch_size=500,
    ),
    # The small tier (randmix reproduce --tier small): the same run with the half-cost width-8 unshuffler.
    "unshuffle-fashion-mnist-small": TrainConfig(
        recipe="unshuffle-fashion-mnist-small", task="shuffle", model="randmix_unshuffler_8_7", dataset="fashion-mnist",
        epochs=1, batch_size=64, lr=0.005, weight_decay=0.0, lr_schedule=WARMUP_LINEAR_DECAY, grad_clip=1.0,
        flip=True, eval_batch_size=500,
    ),
    # The medium tier: a width-64, depth-8 unshuffler (receptive radius 32), the CPU recipe for longer.
    "unshuffle-fashion-mnist-medium": TrainConfig(
        recipe="unshuffle-fashion-mnist-medium", task="shuffle", model="randmix_unshuffler_64_8",
        dataset="fashion-mnist", epochs=2, batch_size=64, lr=0.005, weight_decay=0.0, lr_schedule=WARMUP_LINEAR_DECAY,
        grad_clip=1.0, flip=True, eval_batch_size=500,
    ),
    # The paper's large network (width 512, depth 16, kernel 7) on the MNIST family and CIFAR-10 (GPU). The paper
    # gives no training hyperparameters; these are the CPU recipe's, scaled up, and not yet run on a GPU here.
    **{
        f"unshuffle-{dataset}": TrainConfig(
            recipe=f"unshuffle-{dataset}", task="shuffle", model="randmix_unshuffler_512_16", dataset=dataset,
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
