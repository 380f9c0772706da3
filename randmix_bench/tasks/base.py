"""The Task protocol: the trainer's only task-specific hooks.

The trainer (``randmix_bench.train``) owns data movement, augmentation, optimizer, schedule, precision,
checkpoints and resume; a task says how a batch becomes a loss, how a model is scored on a test split,
and which constructor arguments a dataset implies. Each task is one small class (``classification.py``,
``shuffle.py``), chosen by the training config (:func:`randmix_bench.tasks.task_for`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from randmix_bench.data import DatasetInfo, ImageSplit

if TYPE_CHECKING:
    from randmix_bench.recipes import TrainConfig

__all__ = ["Task"]


class Task(Protocol):
    name: str  # a TaskKind value: "classification", "shuffle"

    @classmethod
    def for_config(cls, cfg: TrainConfig) -> Task:
        """The task ``cfg`` trains, built from its settings (``cfg.task`` names the class)."""
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
