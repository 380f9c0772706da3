"""The Task protocol: the trainer's only task-specific hooks, and :class:`TaskSettings`, what a task adds to a config.

The trainer (``randmix_bench.train``) owns data movement, augmentation, optimizer, schedule, precision,
checkpoints and resume; a task says how a batch becomes a loss, how a model is scored on a test split,
and which constructor arguments a dataset implies. Each task is one small class (``classification.py``,
``shuffle.py``), chosen by the training config (:func:`randmix_bench.tasks.task_for`), and declares its own
settings class, which the config carries beside the settings every run shares (``TrainConfig.task_settings``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import torch
from torch import nn

from randmix_bench.data import DatasetInfo, ImageSplit
from randmix_bench.errors import check_finite_fields
from randmix_bench.vocab import TaskKind

if TYPE_CHECKING:
    from randmix_bench.recipes import TrainConfig

__all__ = ["Task", "TaskSettings"]

S = TypeVar("S", bound="TaskSettings")


@dataclass(frozen=True)
class TaskSettings:
    """The training settings one task adds to those every run shares; its task class declares it
    (``Task.settings_type``) and alone reads it. A stored config keeps these fields flat, by their own names,
    beside the shared ones (``TrainConfig.to_dict``), so they are named once across tasks."""

    kind: ClassVar[TaskKind]

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_values(cls: type[S], values: Mapping[str, Any]) -> S:
        """The settings from stored or given values (JSON or options, by field name), parsed; missing ones
        keep their defaults. Subclasses parse their typed fields here."""
        return cls(**values)

    def validate(self: S) -> S:
        """Raise a one-line :class:`RandmixError` naming the first bad setting; return self. Subclasses
        check their ranges after this."""
        check_finite_fields(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values, by name (a vocabulary member as its text)."""
        return {f.name: str(v) if isinstance(v := getattr(self, f.name), Enum) else v
                for f in dataclasses.fields(self)}


class Task(Protocol):
    name: str  # a TaskKind value: "classification", "shuffle"
    settings_type: ClassVar[type[TaskSettings]]  # what a config of this task carries (its settings_type.kind)

    @classmethod
    def for_config(cls, cfg: TrainConfig) -> Task:
        """The task ``cfg`` trains, built from its settings (``cfg.task_settings``, of :attr:`settings_type`)."""
        ...

    def model_kwargs(self, info: DatasetInfo) -> dict[str, Any]:
        """Constructor arguments the dataset implies (channels, classes, normalization)."""
        ...

    def batch_loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of one batch; ``images`` are float [0, 1], already augmented."""
        ...

    def evaluate(self, model: nn.Module, split: ImageSplit, batch_size: int, device: torch.device) -> dict[str, float]:
        """Test metrics, the headline metric first (e.g. ``{"test_acc": 0.92}``)."""
        ...

    def config(self) -> dict[str, Any]:
        """The task record written beside the training config (run.json, checkpoint, resume.pt): what the
        config implies and a reader should not have to recompute, e.g. a shuffle run's permutation."""
        ...
