"""timm-registered randmix models; importing this package registers them."""

from __future__ import annotations

from typing import Any

import timm
from torch import nn

from randmix_bench.errors import RandmixError, choices_error
from randmix_bench.vocab import TaskKind

from .convmixer import ConvMixer
from .resnet import ResNet
from .unshuffler import UNSHUFFLER_MODELS, Unshuffler

__all__ = ["ConvMixer", "ResNet", "Unshuffler", "MAX_IN_CHANS", "MAX_CLASSES", "create_model", "list_models",
           "model_task"]

MAX_IN_CHANS = 16
"""The most input channels a randmix model is built with (and a checkpoint may record): far above any image
dataset's, low enough that a typo cannot ask for a model that fills the memory."""
MAX_CLASSES = 100_000
"""The most classes a classifier is built with (ImageNet-21k has 21,843)."""
_SIZES = {"in_chans": MAX_IN_CHANS, "num_classes": MAX_CLASSES}


def list_models() -> list[str]:
    """Names of every model this package registers in timm."""
    return timm.list_models("randmix_*")


def model_task(name: str) -> TaskKind:
    """The task a model is built for: shuffle for the image-to-image unshufflers, classification for the others."""
    return TaskKind.SHUFFLE if name in UNSHUFFLER_MODELS else TaskKind.CLASSIFICATION


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` for randmix models, with a one-line error listing the valid names, or naming a size
    (``in_chans``, ``num_classes``) outside 1 to its maximum, which torch would refuse with a traceback or not at
    all."""
    valid = list_models()
    if name not in valid:
        raise choices_error("model", name, valid)
    for key, most in _SIZES.items():
        value = kwargs.get(key)
        if value is not None and not (type(value) is int and 1 <= value <= most):
            raise RandmixError(f"{key} must be an int from 1 to {most}, got {value!r}")
    return timm.create_model(name, pretrained=False, **kwargs)
