"""Two tensor idioms every evaluation path shares, written once.

Images are stored as uint8 and enter a model as float32 in [0, 1] (the models normalize inside, as
RobustBench and AutoAttack expect); scoring runs a model in eval mode and must hand it back in the mode it
came in, also when scoring fails halfway (a trainer evaluates between epochs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["eval_mode", "to_unit"]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block; its previous training flag is restored, even on an exception."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [0, 255] as a new float32 tensor in [0, 1] (same shape and device)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels, got {images.dtype}")  # a float input would be scaled twice
    return images.float().div_(255)
