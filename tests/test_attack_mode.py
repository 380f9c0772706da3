"""The model as attacks run it (randmix_bench/robustness/attack_mode.py): channels-last with contiguous gradients
handed back, the CPU's GELU, eval BatchNorm and patch embedding swapped for faster layers that compute the same
function, and everything restored afterwards."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from randmix_bench.models import create_model
from randmix_bench.robustness.attack_mode import (
    NHWCGELU,
    BatchNormAffine,
    ChannelsLastInputs,
    PatchEmbedMatmul,
    attack_mode,
)


def _trained_statistics(model: nn.Module) -> nn.Module:
    """Running statistics and affine parameters away from their initial 0/1, so a wrong fold would show."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
                m.bias.data.copy_(torch.randn(m.num_features, generator=gen))
    return model


def test_attack_model_computes_the_same_function_and_hands_back_contiguous_gradients() -> None:
    """AutoAttack ``view``s the input gradient it gets: a channels-last model must hand back a contiguous one, with
    the values (up to float32 rounding) the standard layout and layers give."""
    model = _trained_statistics(create_model("randmix_convmixer_tiny", in_chans=3, mixing="chans"))
    x = torch.rand(4, 3, 32, 32)
    x_ref = x.clone().requires_grad_(True)
    logits = model.eval()(x_ref)
    expected = torch.autograd.grad(logits.logsumexp(1).sum(), x_ref)[0]
    formats = [t.is_contiguous() for t in model.parameters()]
    before = dict(model.named_modules())
    model.train()
    with attack_mode(model):
        assert not model.training
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.dim() == 4)
        kinds = {type(m) for m in model.modules()}
        assert {NHWCGELU, BatchNormAffine, PatchEmbedMatmul} <= kinds and not {nn.GELU, nn.BatchNorm2d} & kinds
        wrapped = ChannelsLastInputs(model)
        x_cl = x.clone().requires_grad_(True)
        out = wrapped(x_cl)
        grad = torch.autograd.grad(out.logsumexp(1).sum(), x_cl)[0]
    assert grad.is_contiguous() and grad.view(4, -1).shape == (4, 3 * 32 * 32)
    torch.testing.assert_close(out, logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)
    assert [t.is_contiguous() for t in model.parameters()] == formats  # restored
    assert all(p.requires_grad for p in model.parameters())
    after = dict(model.named_modules())
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    assert model.training


def _state(model: nn.Module) -> list[object]:
    return [(type(m), m.training) for m in model.modules()] + [
        (p.requires_grad, p.is_contiguous()) for p in model.parameters()]


def test_the_model_is_restored_when_the_block_fails() -> None:
    model = create_model("randmix_convmixer_tiny", in_chans=3, mixing="full").train()
    before, modules = _state(model), list(model.modules())
    with pytest.raises(RuntimeError, match="attack failed"), attack_mode(model):
        raise RuntimeError("attack failed")
    assert _state(model) == before and list(model.modules()) == modules


def test_a_layer_that_cannot_be_swapped_leaves_the_model_as_it_was() -> None:
    """Its own error, not a second one from the restoring code, and no layer left swapped."""
    broken = nn.BatchNorm2d(3)
    broken.weight = nn.Parameter(torch.ones(2))  # does not match its 3 running statistics
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.GELU(), broken)
    before, modules = _state(model), list(model.modules())
    with pytest.raises(RuntimeError, match="size of tensor"), attack_mode(model):
        pass
    assert _state(model) == before and list(model.modules()) == modules


def test_layers_are_swapped_on_a_cpu_only() -> None:
    """Off the CPU (here: a buffer on the meta device) the kernels are other kernels: nothing is swapped."""
    model = nn.Sequential(nn.BatchNorm2d(3, affine=False).to("meta"), nn.GELU())
    with attack_mode(model):
        assert [type(m) for m in model] == [nn.BatchNorm2d, nn.GELU]


def test_the_batchnorm_stand_in_refuses_what_batchnorm2d_refuses() -> None:
    bn = nn.BatchNorm2d(4).eval()
    with pytest.raises(ValueError, match="expected 4D input"):
        BatchNormAffine(bn)(torch.rand(2, 4, 5))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_stand_ins_match_the_layers_they_replace(layout: torch.memory_format) -> None:
    x = (3 * torch.randn(5, 8, 6, 6, generator=torch.Generator().manual_seed(0))).contiguous(memory_format=layout)
    for approximate in ("none", "tanh"):
        gelu = NHWCGELU(approximate)
        # float32's own tolerance (assert_close's default): oneDNN's erf and torch's differ by up to 1.4e-6 on an
        # Intel Xeon with AVX-512 and AMX (2026-12-06), within 1e-6 on the AMD machine they were first tested on
        torch.testing.assert_close(gelu(x), nn.functional.gelu(x, approximate=approximate))
        assert gelu(x).is_contiguous(memory_format=layout)
    for affine in (True, False):
        bn = _trained_statistics(nn.BatchNorm2d(8, affine=affine, eps=1e-3)).eval()
        torch.testing.assert_close(BatchNormAffine(bn)(x), bn(x), rtol=1e-5, atol=1e-5)


def test_layers_that_are_not_plain_eval_maps_are_kept() -> None:
    """A BatchNorm without running statistics normalizes by the batch's own even in eval mode, and a subclass may do
    more in its forward: neither is swapped."""

    class NormAct(nn.BatchNorm2d):
        pass

    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, track_running_stats=False),
                          NormAct(4), nn.GELU(approximate="tanh"))
    with attack_mode(model):
        assert [type(m) for m in model] == [nn.Conv2d, nn.BatchNorm2d, NormAct, NHWCGELU]


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize(("in_chans", "kernel", "size", "bias"), [
    (1, 4, (28, 28), True),  # the small ConvMixer's stem
    (3, (2, 3), (11, 14), False),  # a rectangular patch, a remainder the convolution drops, no bias
])
def test_the_patch_embedding_stand_in_matches_the_convolution(
        layout: torch.memory_format, in_chans: int, kernel: int | tuple[int, int], size: tuple[int, int],
        bias: bool) -> None:
    """Forward and input gradient, in either layout of the input, with an output in the channels-last layout the
    convolution gives in attack mode."""
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(in_chans, 6, kernel, stride=kernel, bias=bias).requires_grad_(False)
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.rand(5, in_chans, *size, generator=gen).contiguous(memory_format=layout)
    stand_in = PatchEmbedMatmul(conv)
    outs, grads = [], []
    for layer in (conv, stand_in):
        xa = x.clone().requires_grad_(True)
        out = layer(xa)
        outs.append(out)
        grads.append(torch.autograd.grad((out * torch.arange(out.numel()).view_as(out).sin()).sum(), xa)[0])
    torch.testing.assert_close(outs[1], outs[0])
    torch.testing.assert_close(grads[1], grads[0])
    assert outs[1].is_contiguous(memory_format=torch.channels_last)


def test_the_patch_embedding_stand_in_leaves_other_inputs_to_the_convolution() -> None:
    """An unbatched image is the convolution's to compute, an empty batch gives the convolution's empty result, and
    an input it refuses (channels, size, dtype) gets the convolution's own error."""
    conv = nn.Conv2d(3, 4, 2, stride=2)
    stand_in = PatchEmbedMatmul(conv)
    for good in (torch.rand(3, 8, 8), torch.rand(0, 3, 8, 8)):
        torch.testing.assert_close(stand_in(good), conv(good))
    for bad in (torch.rand(2, 1, 8, 8), torch.rand(2, 3, 1, 8), torch.rand(2, 3, 8, 8, dtype=torch.float64)):
        with pytest.raises(RuntimeError) as expected:
            conv(bad)
        with pytest.raises(RuntimeError, match=re.escape(str(expected.value))):
            stand_in(bad)


def test_attack_mode_entered_twice_swaps_each_layer_once() -> None:
    """A model already in attack mode (nested blocks, a transfer attack's source sharing layers) keeps working."""
    model = create_model("randmix_convmixer_tiny", in_chans=1, mixing="full").eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
        with attack_mode(model):
            swapped = [type(m) for m in model.modules()]
            with attack_mode(model):
                assert [type(m) for m in model.modules()] == swapped
                torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("conv", "fits"), [
    (nn.Conv2d(1, 8, 4, stride=4), True),
    (nn.Conv2d(3, 8, (2, 3), stride=(2, 3), padding="valid"), True),
    (nn.Conv2d(3, 8, 4, stride=4, padding=0, padding_mode="reflect"), True),  # no padding: no padding mode
    (nn.Conv2d(3, 8, 1), False),  # 1x1: oneDNN's own is faster
    (nn.Conv2d(3, 8, 4, stride=2), False),  # overlapping patches
    (nn.Conv2d(3, 8, 4, stride=4, padding=1), False),
    (nn.Conv2d(3, 8, 4, stride=4, dilation=2), False),
    (nn.Conv2d(4, 8, 4, stride=4, groups=2), False),
    (type("Sub", (nn.Conv2d,), {})(3, 8, 4, stride=4), False),  # a subclass may do more in its forward
])
def test_only_plain_patch_embeddings_are_swapped(conv: nn.Conv2d, fits: bool) -> None:
    model = nn.Sequential(conv)
    with attack_mode(model):
        assert isinstance(model[0], PatchEmbedMatmul) is fits
    assert model[0] is conv
