"""The mixing transform: frozen filters stay put, seeds reproduce, counts are what the variant says."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import timm
import torch
from timm.layers import Conv2dSame
from torch import nn

import randmix_bench  # noqa: F401  (registers models)
from randmix_bench.errors import RandmixError
from randmix_bench.freezing import (
    FrozenConv2d,
    FrozenLinear,
    count_parameters,
    default_init_bound,
    freeze_mixing,
    gaussian_smooth,
    is_channel_mixer,
    is_spatial_mixer,
)
from randmix_bench.frozen_backward import conv2d_without_weight_grad, explicit_padding
from randmix_bench.models import create_model
from randmix_bench.vocab import Mixing


def frozen_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: m.weight.clone() for n, m in model.named_modules() if isinstance(m, FrozenConv2d)}


@pytest.mark.parametrize("mixing", ["chans", "space", "chans-smooth"])
def test_frozen_side_gets_no_gradient_and_does_not_move(mixing: str) -> None:
    torch.manual_seed(0)
    model = create_model("randmix_convmixer_tiny", mixing=mixing)
    before = frozen_weights(model)
    learned_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert before, "the variant froze nothing"
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for name, m in model.named_modules():
        if isinstance(m, FrozenConv2d):
            assert not m.weight.requires_grad and m.weight.grad is None
            assert "weight" in dict(m.named_buffers()) and "weight" not in dict(m.named_parameters())
            assert torch.equal(m.weight, before[name])
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, learned_before[n])]
    learned_side = "channel" if mixing != "space" else "spatial"
    assert any(f".{learned_side}." in n for n in moved), f"learned {learned_side} mixers did not move"


def test_same_seed_same_filters_other_seed_differs() -> None:
    a = frozen_weights(create_model("randmix_convmixer_tiny", mixing="chans", mixer_seed=3))
    b = frozen_weights(create_model("randmix_convmixer_tiny", mixing="chans", mixer_seed=3))
    c = frozen_weights(create_model("randmix_convmixer_tiny", mixing="chans", mixer_seed=4))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(not torch.equal(a[k], c[k]) for k in a)


def test_frozen_filters_do_not_depend_on_the_global_rng() -> None:
    torch.manual_seed(1)
    a = frozen_weights(create_model("randmix_convmixer_tiny", mixing="chans", mixer_seed=7))
    torch.manual_seed(2)
    b = frozen_weights(create_model("randmix_convmixer_tiny", mixing="chans", mixer_seed=7))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_filters_follow_pytorch_default_init_bound() -> None:
    model = create_model("randmix_convmixer_256_8", mixing="chans")
    for m in model.modules():
        if isinstance(m, FrozenConv2d):
            k = m.kernel_size[0]
            assert m.weight.abs().max() <= 1 / k
            assert m.weight.abs().max() > 0.9 / k  # 25*256 draws fill the range
            assert abs(m.weight.mean().item()) < 0.02


def test_smoothing_lowers_high_frequencies_and_keeps_norm() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.empty(64, 1, 7, 7).uniform_(-1 / 7, 1 / 7, generator=g)
    s = gaussian_smooth(w, 1.0)
    assert torch.allclose(w.flatten(1).norm(dim=1), s.flatten(1).norm(dim=1), atol=1e-6)

    def neighbour_diff(t: torch.Tensor) -> float:
        return (t[..., 1:] - t[..., :-1]).abs().mean().item()

    assert neighbour_diff(s) < 0.5 * neighbour_diff(w)
    assert torch.equal(gaussian_smooth(w, 0.0), w)


@pytest.mark.parametrize("sigma", [1e-300, 1e-3, 3.0, 1e6, 1e300])
def test_any_finite_sigma_smooths_within_the_filter(sigma: float) -> None:
    """A tiny sigma leaves the filter as it is (its Gaussian is a single tap), a huge one makes it flat, and
    neither builds a kernel larger than the filter (1e300 once asked for 2e300 taps) nor divides 0 by 0."""
    w = torch.empty(8, 1, 5, 5).uniform_(-0.2, 0.2, generator=torch.Generator().manual_seed(1))
    s = gaussian_smooth(w, sigma)
    assert torch.isfinite(s).all()
    assert torch.allclose(w.flatten(1).norm(dim=1), s.flatten(1).norm(dim=1), atol=1e-6)
    if sigma < 0.1:
        assert torch.allclose(s, w, atol=1e-6)
    if sigma > 1e5:  # the widest smoothing the cut kernel allows
        assert torch.allclose(s, gaussian_smooth(w, 1e4), atol=1e-6)


def test_chans_smooth_differs_from_chans_only_by_smoothing() -> None:
    chans = frozen_weights(create_model("randmix_convmixer_tiny", mixing="chans"))
    smooth = frozen_weights(create_model("randmix_convmixer_tiny", mixing="chans-smooth", smooth_sigma=1.0))
    for k in chans:
        assert torch.allclose(gaussian_smooth(chans[k], 1.0), smooth[k])


@pytest.mark.parametrize("name", ["randmix_convmixer_256_8", "randmix_resnet18", "randmix_convmixer_tiny"])
def test_trainable_counts_match_the_variant(name: str) -> None:
    full = create_model(name, mixing="full")
    spatial = sum(m.weight.numel() for m in full.modules() if is_spatial_mixer(m))
    channel = sum(
        m.weight.numel()
        for n, m in full.named_modules()
        if is_channel_mixer(m) and "shortcut" not in n and not n.startswith(("stem", "head"))  # head: a Linear
    )
    total, frozen = count_parameters(full)
    assert frozen == 0
    for mixing, frozen_expected in [("chans", spatial), ("chans-smooth", spatial), ("space", channel)]:
        model = create_model(name, mixing=mixing)
        trainable, frozen = count_parameters(model)
        assert frozen == frozen_expected
        assert trainable == total - frozen_expected
        assert model.mixing.frozen_params == frozen_expected


@pytest.mark.parametrize("name", ["convnext_atto", "mobilenetv3_small_100", "convmixer_768_32"])
def test_generic_transform_on_timm_models(name: str) -> None:
    model = timm.create_model(name, pretrained=False, num_classes=10)
    n_depthwise = sum(is_spatial_mixer(m) for m in model.modules())
    report = freeze_mixing(model, "chans", seed=0)
    assert len(report.frozen_modules) == n_depthwise > 0
    assert sum(isinstance(m, FrozenConv2d) for m in model.modules()) == n_depthwise
    trainable, frozen = count_parameters(model)
    assert frozen == report.frozen_params and trainable == report.trainable_params
    size = 64 if name != "convmixer_768_32" else 32
    out = model(torch.rand(1, 3, size, size))
    assert out.shape == (1, 10)
    # applying it again changes nothing: the filters are already frozen
    assert freeze_mixing(model, "chans", seed=1).frozen_modules == []


def test_a_generic_model_carries_its_report_as_the_randmix_models_do() -> None:
    """README: ``model.mixing.details()`` reviews a timm model frozen by the transform."""
    model = timm.create_model("mobilenetv3_small_100", pretrained=False, num_classes=10)
    report = freeze_mixing(model, "chans", seed=0)
    assert model.mixing is report
    lines = model.mixing.details().splitlines()
    assert "blocks.0.0.conv_dw: frozen" in lines
    assert any(line.startswith("conv_stem: stem") for line in lines)
    # a second call that freezes nothing more does not replace the report of the call that froze the filters
    assert freeze_mixing(model, "chans", seed=1).frozen_modules == [] and model.mixing is report
    # a model whose own `mixing` is a submodule keeps it; the returned report is the way to read the change
    holder = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 8, 1))
    holder.mixing = nn.Identity()
    assert freeze_mixing(holder, "chans").frozen_modules == ["1"] and isinstance(holder.mixing, nn.Identity)


def test_generic_transform_refuses_a_model_without_depthwise_convs() -> None:
    model = timm.create_model("resnet18", pretrained=False)
    with pytest.raises(ValueError, match="no depthwise convolutions"):
        freeze_mixing(model, "chans")
    assert freeze_mixing(model, "full").frozen_modules == []


def test_unknown_mixing_mode_lists_choices() -> None:
    with pytest.raises(ValueError, match="valid choices: full, chans, space, chans-smooth"):
        Mixing.parse("chan")
    assert Mixing.parse("chans-smooth") is Mixing.CHANS_SMOOTH


def test_same_filters_on_another_device_or_dtype() -> None:
    """Filters are drawn on the CPU in float32, then moved: every device gets the same values."""
    conv = nn.Conv2d(8, 8, 5, groups=8, padding=2).to(torch.float64)
    a = FrozenConv2d(conv, torch.Generator().manual_seed(0))
    b = FrozenConv2d(nn.Conv2d(8, 8, 5, groups=8, padding=2), torch.Generator().manual_seed(0))
    assert a.weight.dtype == torch.float64
    assert torch.equal(a.weight.float(), b.weight)
    if torch.cuda.is_available():
        c = FrozenConv2d(nn.Conv2d(8, 8, 5, groups=8, padding=2).cuda(), torch.Generator().manual_seed(0))
        assert torch.equal(c.weight.cpu(), b.weight)


# timm model -> (constructor kwargs, {left-alone layer: words its reason must contain, in every frozen mode})
TIMM_CASES = {
    "convnext_atto": ({}, {"stem.0": "stem", "head.fc": "after the global pool"}),
    "convnext_atto_linear_mlp": (
        {"conv_mlp": False},
        {"stem.0": "stem", "head.fc": "after the global pool"},
    ),
    "mobilenetv3_small_100": (
        {},
        {
            "conv_stem": "stem",
            "blocks.0.0.se.conv_reduce": "squeeze-excitation gate",
            "blocks.2.1.se.conv_expand": "squeeze-excitation gate",
            "conv_head": "after the global pool",
            "classifier": "after the global pool",
        },
    ),
    "efficientnet_b0": (
        {},
        {
            "conv_stem": "stem",
            "blocks.1.0.se.conv_reduce": "squeeze-excitation gate",
            "blocks.6.0.se.conv_expand": "squeeze-excitation gate",
            "conv_head": "outside the blocks",
            "classifier": "after the global pool",
        },
    ),
}


def build_timm(case: str) -> nn.Module:
    kwargs, _ = TIMM_CASES[case]
    return timm.create_model(case.removesuffix("_linear_mlp"), pretrained=False, num_classes=10, **kwargs)


@pytest.mark.parametrize("mixing", ["chans", "space"])
@pytest.mark.parametrize("case", list(TIMM_CASES))
def test_generic_transform_freezes_only_feature_map_mixers(case: str, mixing: str) -> None:
    model = build_timm(case)
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    if mixing == "chans":
        expected = {n for n, m in layers.items() if is_spatial_mixer(m)}
    else:  # 1x1 convs and Linears inside the blocks, outside squeeze-excitation
        in_blocks = {n for n in layers if n.startswith(("blocks.", "stages.")) and ".se." not in n}
        expected = {n for n in in_blocks if is_channel_mixer(layers[n])}
    report = freeze_mixing(model, mixing, seed=0)
    assert expected and set(report.frozen_modules) == expected
    assert set(report.left) == set(layers) - expected  # every other conv/Linear is accounted for
    for name, words in TIMM_CASES[case][1].items():
        assert name not in report.frozen_modules and words in report.left[name], (name, report.left[name])
    assert "\n" not in str(report) and len(report.details().splitlines()) == len(layers)
    if case == "convnext_atto_linear_mlp" and mixing == "space":
        assert all(isinstance(model.get_submodule(n), FrozenLinear) for n in expected)
    trainable, frozen = count_parameters(model)
    assert frozen == report.frozen_params == sum(layers[n].weight.numel() for n in expected)
    assert trainable == report.trainable_params

    nn.functional.cross_entropy(model(torch.rand(2, 3, 32, 32)), torch.tensor([0, 1])).backward()
    for name in expected:
        layer = model.get_submodule(name)
        assert "weight" in dict(layer.named_buffers()) and "weight" not in dict(layer.named_parameters())
        assert not layer.weight.requires_grad and layer.weight.grad is None
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert freeze_mixing(model, mixing, seed=1).left[next(iter(expected))] == "already frozen"


def test_frozen_linear_follows_the_default_init_and_keeps_its_bias() -> None:
    linear = nn.Linear(64, 256)
    frozen = FrozenLinear(linear, torch.Generator().manual_seed(0))
    again = FrozenLinear(nn.Linear(64, 256), torch.Generator().manual_seed(0))
    bound = default_init_bound(linear.weight.shape)
    assert bound == 1 / 8 and 0.9 * bound < frozen.weight.abs().max() <= bound
    assert torch.equal(frozen.weight, again.weight)
    assert frozen.bias is linear.bias and frozen.bias.requires_grad
    x = torch.rand(2, 5, 5, 64)  # channels-last pixels, as in ConvNeXt's MLP
    assert torch.allclose(frozen(x), x @ frozen.weight.T + linear.bias)


@pytest.mark.parametrize("sigma", [float("inf"), float("nan"), -1.0])
def test_smooth_sigma_must_be_finite_and_non_negative(sigma: float) -> None:
    model = create_model("randmix_convmixer_tiny")
    with pytest.raises(RandmixError, match="smooth_sigma must be a finite number >= 0") as info:
        freeze_mixing(model, "chans-smooth", smooth_sigma=sigma)
    assert "\n" not in str(info.value)


def test_a_model_with_nothing_to_freeze_is_an_error_not_silence() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=8))  # stem + depthwise, no channel mixer
    with pytest.raises(RandmixError, match="found no channel mixers on the feature path of Sequential"):
        freeze_mixing(model, "space")


# Computed with the transform as it was before structural exclusions and Linear mixers were added:
# randmix checkpoints store these buffers, so the same arguments must keep drawing the same values.
PINNED_FROZEN = {
    ("randmix_resnet_tiny", "chans"): (
        ["stages.0.0.conv1.spatial", "stages.0.0.conv2.spatial",
         "stages.1.0.conv1.spatial", "stages.1.0.conv2.spatial"],
        "3560a60bebc561ee4ea9ca3ce7630ff2ae78c807c4c15a0e6df6a303040eb93d",
    ),
    ("randmix_resnet_tiny", "space"): (
        ["stages.0.0.conv1.channel", "stages.0.0.conv2.channel",
         "stages.1.0.conv1.channel", "stages.1.0.conv2.channel"],
        "b9d9b64b6e295821d6a86744f556901bc0d26d1103e2374837d4287345f2ce1e",
    ),
    ("randmix_convmixer_tiny", "chans"): (
        ["blocks.0.spatial", "blocks.1.spatial"],
        "af83b041c324e2dcc3be7f0114ebcb7ff8feb3a090b4a4eba5bd2eac4382bdff",
    ),
    ("randmix_unshuffler_tiny", "space"): (
        ["blocks.0.channel", "blocks.1.channel"],
        "e5780da917a14b49bcea31e3251ef6f831e076665a5abf004d0049d5ec8531f0",
    ),
}


@pytest.mark.parametrize(("name", "mixing"), list(PINNED_FROZEN))
def test_randmix_models_freeze_the_same_modules_and_values_as_before(name: str, mixing: str) -> None:
    modules, last_sha256 = PINNED_FROZEN[(name, mixing)]
    model = create_model(name, mixing=mixing, mixer_seed=3)
    assert model.mixing.frozen_modules == modules
    last = model.state_dict()[f"{modules[-1]}.weight"].contiguous()
    assert hashlib.sha256(last.numpy().tobytes()).hexdigest() == last_sha256



def _conv_and_frozen(conv: nn.Conv2d) -> FrozenConv2d:
    """``conv`` frozen, its weight set to the frozen one's so that the two compute the same function."""
    frozen = FrozenConv2d(conv, torch.Generator().manual_seed(0))
    conv.weight.data.copy_(frozen.weight)
    conv.weight.requires_grad_(False)
    return frozen


GEOMETRIES = [dict(padding="same", kernel_size=5), dict(padding=2, kernel_size=5, stride=2),
              dict(padding="valid", kernel_size=3), dict(padding=(1, 2), kernel_size=3),
              dict(padding="same", kernel_size=4, dilation=2), dict(padding=1, kernel_size=3, dilation=(1, 2))]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize(("batch", "layout"), [(4, torch.channels_last), (1, torch.contiguous_format)])
def test_a_frozen_conv_trains_without_the_weight_gradient_and_the_same_forward(
        geometry: dict[str, Any], batch: int, layout: torch.memory_format) -> None:
    """The CPU training path skips the frozen weight's gradient; its forward and input gradient are autograd's
    bit for bit, its bias gradient equal up to the order of summation."""
    conv = nn.Conv2d(6, 6, groups=6, **geometry)
    frozen = _conv_and_frozen(conv)
    x = torch.randn(batch, 6, 11, 13).to(memory_format=layout)
    grad = torch.randn_like(conv(x))
    outs, grads = [], []
    for layer in (conv, frozen):
        xi = x.clone().requires_grad_(True)
        out = layer(xi)
        out.backward(grad)
        outs.append(out)
        grads.append((xi.grad, layer.bias.grad))
    assert "ConvWithoutWeightGrad" in outs[1].grad_fn.name()
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_the_weightless_backward_is_the_convolutions_gradient_to_second_order(geometry: dict[str, Any]) -> None:
    conv = nn.Conv2d(3, 3, groups=3, **geometry).double()
    padding = explicit_padding(conv)
    assert padding is not None
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, generator=gen, requires_grad=True)

    def f(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return conv2d_without_weight_grad(x, conv.weight.detach(), bias, conv.stride, padding, conv.dilation, 3)

    assert torch.autograd.gradcheck(f, (x, bias))
    assert torch.autograd.gradgradcheck(f, (x, bias))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel", "ignore:`torch.jit.trace:FutureWarning")
@pytest.mark.parametrize("case", ["no grad", "bias frozen", "no bias", "uneven same", "pointwise", "reflect",
                                  "cpu autocast", "jit trace"])
def test_a_frozen_conv_keeps_autograds_path_where_the_shortcut_does_not_apply(case: str) -> None:
    geometry = {"uneven same": dict(kernel_size=4, padding="same"), "pointwise": dict(kernel_size=1, groups=1),
                "reflect": dict(kernel_size=3, padding=1, padding_mode="reflect")}.get(case, dict(kernel_size=3,
                                                                                                  padding="same"))
    conv = nn.Conv2d(6, 6, **{"groups": 6, "bias": case != "no bias", **geometry})
    frozen = _conv_and_frozen(conv)
    if case == "bias frozen":
        frozen.requires_grad_(False)
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    with torch.set_grad_enabled(case != "no grad"), torch.autocast("cpu", enabled=case == "cpu autocast"):
        if case == "jit trace":
            traced = torch.jit.trace(frozen, x)
            assert "ConvWithoutWeightGrad" not in str(traced.graph) and torch.equal(traced(x), conv(x))
        out = frozen(x)
        assert torch.equal(out, conv(x))
    assert case == "jit trace" or out.grad_fn is None or "ConvWithoutWeightGrad" not in out.grad_fn.name()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("side", [11, 12])
def test_a_frozen_conv2d_same_keeps_timms_dynamic_padding(side: int) -> None:
    """TensorFlow-ported timm models pad by the input's size (``Conv2dSame``); the frozen conv must too."""
    conv = Conv2dSame(6, 6, 3, stride=2, groups=6)
    frozen = _conv_and_frozen(conv)
    x = torch.randn(2, 6, side, side, requires_grad=True)
    out = frozen(x)
    assert torch.equal(out, conv(x)) and out.shape[-1] == (side + 1) // 2
    out.sum().backward()
    assert torch.jit.script(frozen)(x).shape == out.shape
