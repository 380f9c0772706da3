"""Pieces every randmix model shares: in-model normalization and timm default configs."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from randmix_bench.errors import RandmixError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)


def default_stats(in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """CIFAR-10's mean/std for RGB, a neutral (0.5, 0.25) otherwise; trainers pass the dataset's own."""
    return (CIFAR10_MEAN, CIFAR10_STD) if in_chans == 3 else ((0.5,), (0.25,))


class Normalize(nn.Module):
    """(x - mean) / std inside the model, so it takes [0, 1] inputs as RobustBench and AutoAttack expect.

    The statistics are non-persistent buffers: they come from the model config, not the checkpoint.
    A single-value mean/std is broadcast to any number of input channels.
    """

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None, in_chans: int) -> None:
        super().__init__()
        default_mean, default_std = default_stats(in_chans)
        mean, std = tuple(mean or default_mean), tuple(std or default_std)
        if len(mean) != len(std) or len(mean) not in (1, in_chans):
            raise RandmixError(f"mean/std have {len(mean)}/{len(std)} values for {in_chans} input channels")
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def cfg_32px(**kwargs: Any) -> dict[str, Any]:
    """timm default config for a randmix model trained from scratch on 32x32 images (no weights)."""
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
        "first_conv": "stem.0",
        "classifier": "head",
        "license": "mit",
        **kwargs,
    }
