"""timm-registered randmix models; importing this package registers them."""

from __future__ import annotations

from typing import Any

import timm
from torch import nn

from .convmixer import ConvMixer
from .resnet import ResNet

__all__ = ["ConvMixer", "ResNet", "create_model", "list_models"]


def list_models() -> list[str]:
    """Names of every model this package registers in timm."""
    return timm.list_models("randmix_*")


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` for randmix models, with a one-line error listing the valid names."""
    valid = list_models()
    if name not in valid:
        raise ValueError(f"unknown model {name!r}; valid choices: {', '.join(valid)}")
    return timm.create_model(name, pretrained=False, **kwargs)
