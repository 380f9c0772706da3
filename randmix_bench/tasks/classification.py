"""Image classification: cross-entropy training, clean top-1 accuracy on the test split.

``predict`` and ``accuracy`` score exactly as the attacks see a model (eval mode, float32, inputs in
[0, 1]), so the clean accuracy of a training run, an evaluation and ``randmix verify`` count alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from randmix_bench.data import DatasetInfo, ImageSplit
from randmix_bench.errors import RandmixError
from randmix_bench.tasks.base import TaskSettings
from randmix_bench.tensors import eval_mode, to_unit
from randmix_bench.vocab import TaskKind

if TYPE_CHECKING:
    from randmix_bench.recipes import TrainConfig

__all__ = ["ClassificationSettings", "ClassificationTask", "predict", "accuracy"]


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Predicted labels for uint8 ``images`` [N, C, H, W], in order, in eval mode, in float32 (the
    precision attacks run at, so clean and robust accuracy count the same way); returns CPU int64."""
    preds = []
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            x = to_unit(images[start : start + batch_size].to(device, non_blocking=True))
            preds.append(model(x).argmax(1).cpu())
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, split: ImageSplit, batch_size: int = 1000, device: torch.device | str = "cpu") -> float:
    """Clean top-1 accuracy (a fraction) of ``model`` on every point of ``split``."""
    preds = predict(model, split.images, batch_size, torch.device(device))
    return (preds == split.labels).float().mean().item()


@dataclass(frozen=True)
class ClassificationSettings(TaskSettings):
    """What a classification run adds to the shared training settings."""

    kind: ClassVar[TaskKind] = TaskKind.CLASSIFICATION
    label_smoothing: float = 0.0  # of the cross-entropy

    def validate(self) -> ClassificationSettings:
        super().validate()
        if not 0 <= self.label_smoothing < 1:
            raise RandmixError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        return self


class ClassificationTask:
    """Cross-entropy with optional label smoothing; scored by clean test accuracy."""

    name = "classification"
    settings_type: ClassVar[type[TaskSettings]] = ClassificationSettings

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = label_smoothing

    @classmethod
    def for_config(cls, cfg: TrainConfig) -> ClassificationTask:
        return cls(cfg.settings_of(ClassificationSettings).label_smoothing)

    def model_kwargs(self, info: DatasetInfo) -> dict[str, Any]:
        return {"in_chans": info.in_chans, "num_classes": info.num_classes, "mean": info.mean, "std": info.std}

    def batch_loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(images), labels, label_smoothing=self.label_smoothing)

    def evaluate(self, model: nn.Module, split: ImageSplit, batch_size: int, device: torch.device) -> dict[str, float]:
        return {"test_acc": accuracy(model, split, batch_size, device)}

    def config(self) -> dict[str, Any]:
        return {"task": self.name, "label_smoothing": self.label_smoothing}
