"""The shared tensor idioms: eval mode that always hands the model back, and the one uint8 -> [0, 1] conversion."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from randmix_bench.tensors import eval_mode, to_unit


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_the_previous_flag(training: bool) -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    model.train(training)
    with eval_mode(model) as inside:
        assert inside is model and not any(m.training for m in model.modules())
    assert all(m.training == training for m in model.modules())


def test_eval_mode_restores_the_flag_on_an_exception() -> None:
    model = nn.Linear(2, 2).train()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        assert not model.training
        raise RuntimeError("boom")
    assert model.training


def test_to_unit_maps_every_pixel_value_and_copies() -> None:
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    x = to_unit(pixels)
    assert x.dtype == torch.float32 and x.shape == pixels.shape
    assert torch.equal(x, pixels.float() / 255)  # bit-identical to the expression it replaces
    assert x[0, 0, 0, 0] == 0 and x[0, 0, -1, -1] == 1
    x.add_(1)
    assert pixels[0, 0, 0, 0] == 0  # a new tensor: the stored images are never changed


def test_to_unit_refuses_float_input() -> None:
    with pytest.raises(TypeError, match="expected uint8"):
        to_unit(torch.rand(2, 3))
