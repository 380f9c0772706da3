"""timm-registered randmix models; importing this package registers them."""

from __future__ import annotations

from typing import Any

import timm
from torch import nn

from randmix_bench.errors import choices_error
from randmix_bench.vocab import TaskKind

from .convmixer import ConvMixer
from .resnet import ResNet
from .unshuffler import UNSHUFFLER_MODELS, Unshuffler

__all__ = ["ConvMixer", "ResNet", "Unshuffler", "create_model", "list_models", "model_task"]


def list_models() -> list[str]:
    """Names of every model this package registers in timm."""
    return timm.list_models("randmix_*")


def model_task(name: str) -> TaskKind:
    """The task a model is built for: shuffle for the image-to-image unshufflers, classification for the others."""
    return TaskKind.SHUFFLE if name in UNSHUFFLER_MODELS else TaskKind.CLASSIFICATION


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` for randmix models, with a one-line error listing the valid names."""
    valid = list_models()
    if name not in valid:
        raise choices_error("model", name, valid)
    return timm.create_model(name, pretrained=False, **kwargs)
