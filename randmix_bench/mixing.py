"""Spatial vs channel mixing: the one place that knows which convolutions are which, and freezes them.

A separable convolution is a depthwise conv (spatial mixing: each channel filtered on its own) followed
by a pointwise 1x1 conv (channel mixing). arXiv 2503.16760 freezes one of the two at its random
initialization and learns the other. Frozen weights here are *buffers*, not parameters, so no optimizer,
weight decay or ``requires_grad`` slip can move them, and they are saved in the state dict.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from randmix_bench.errors import RandmixError

__all__ = [
    "Mixing",
    "parse_mixing",
    "FrozenConv2d",
    "MixingReport",
    "freeze_mixing",
    "is_spatial_mixer",
    "is_channel_mixer",
    "count_parameters",
    "DEFAULT_SMOOTH_SIGMA",
]

DEFAULT_SMOOTH_SIGMA = 1.0
"""Std (in pixels) of the Gaussian that low-passes frozen spatial filters in ``chans-smooth``.

1.0 keeps a 5x5 or 7x7 filter visibly random while removing its highest frequencies; 0 disables
smoothing (``chans-smooth`` with sigma 0 equals ``chans``)."""


class Mixing(str, Enum):
    """Which side of each separable convolution is learned."""

    FULL = "full"  # both learned: the baseline
    CHANS = "chans"  # spatial (depthwise) frozen at random init, channel (pointwise) learned
    SPACE = "space"  # channel (pointwise) frozen at random init, spatial (depthwise) learned
    CHANS_SMOOTH = "chans-smooth"  # like chans, with the frozen spatial filters Gaussian-smoothed

    @property
    def frozen_side(self) -> str | None:
        """``"spatial"``, ``"channel"`` or ``None`` (nothing frozen)."""
        return {Mixing.FULL: None, Mixing.SPACE: "channel"}.get(self, "spatial")


def parse_mixing(value: str | Mixing) -> Mixing:
    """Turn user input into a :class:`Mixing`, with an error that lists the valid choices."""
    if isinstance(value, Mixing):
        return value
    try:
        return Mixing(value)
    except ValueError:
        choices = ", ".join(m.value for m in Mixing)
        raise RandmixError(f"unknown mixing mode {value!r}; valid choices: {choices}") from None


def is_spatial_mixer(module: nn.Module) -> bool:
    """A depthwise conv: every channel filtered on its own (groups == in == out channels)."""
    return (
        isinstance(module, nn.Conv2d)
        and module.groups == module.in_channels == module.out_channels
        and module.kernel_size != (1, 1)
    )


def is_channel_mixer(module: nn.Module) -> bool:
    """A pointwise conv: a 1x1, stride-1, ungrouped conv, i.e. a per-pixel linear map across channels."""
    return (
        isinstance(module, nn.Conv2d)
        and module.kernel_size == (1, 1)
        and module.stride == (1, 1)
        and module.groups == 1
    )


def default_init_bound(conv: nn.Conv2d) -> float:
    """Bound of PyTorch's default conv init, kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), +)."""
    fan_in = (conv.in_channels // conv.groups) * conv.kernel_size[0] * conv.kernel_size[1]
    return 1.0 / math.sqrt(fan_in)


def gaussian_smooth(weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """Low-pass each k x k filter with a Gaussian of std ``sigma``, keeping each filter's L2 norm.

    Keeping the norm keeps the layer's output scale, so smoothing changes *which* frequencies pass,
    not how much signal does.
    """
    if sigma <= 0:
        return weight
    out_ch, in_per_group, kh, kw = weight.shape
    radius = max(1, math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g1 = torch.exp(-(x**2) / (2 * sigma**2))
    g2 = torch.outer(g1, g1)
    g2 = (g2 / g2.sum())[None, None]
    flat = weight.double().reshape(out_ch * in_per_group, 1, kh, kw)
    smoothed = F.conv2d(flat, g2, padding=radius)  # zero outside the filter's support
    norm_before = flat.flatten(1).norm(dim=1).clamp_min(1e-12)
    norm_after = smoothed.flatten(1).norm(dim=1).clamp_min(1e-12)
    smoothed = smoothed * (norm_before / norm_after)[:, None, None, None]
    return smoothed.reshape(weight.shape).to(weight.dtype)


class FrozenConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` whose weight is a buffer drawn from the default init with an explicit generator.

    The bias (a per-channel shift, which mixes neither space nor channels) stays a learned parameter.
    The weight is drawn on the CPU in float32, so a seed gives the same filters on every device.
    """

    def __init__(self, conv: nn.Conv2d, generator: torch.Generator, smooth_sigma: float = 0.0) -> None:
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=False,
            padding_mode=conv.padding_mode,
            device="meta",
        )
        bound = default_init_bound(conv)
        weight = torch.empty(conv.weight.shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)
        weight = gaussian_smooth(weight, smooth_sigma)
        del self.weight
        self.register_buffer("weight", weight.to(device=conv.weight.device, dtype=conv.weight.dtype))
        self.bias = conv.bias
        self.smooth_sigma = smooth_sigma

    def extra_repr(self) -> str:
        extra = f", smooth_sigma={self.smooth_sigma}" if self.smooth_sigma else ""
        return super().extra_repr() + ", frozen=True" + extra


@dataclass
class MixingReport:
    """What :func:`freeze_mixing` changed."""

    mixing: Mixing
    seed: int
    smooth_sigma: float
    frozen_modules: list[str] = field(default_factory=list)
    frozen_params: int = 0  # elements now held in frozen buffers
    trainable_params: int = 0  # elements still learned, in the whole module after the change

    def __str__(self) -> str:
        return (
            f"mixing={self.mixing.value}: froze {len(self.frozen_modules)} convs "
            f"({self.frozen_params:,} weights); {self.trainable_params:,} trainable parameters remain"
        )


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable parameters, frozen mixer weights) of ``module``."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(m.weight.numel() for m in module.modules() if isinstance(m, FrozenConv2d))
    return trainable, frozen


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def freeze_mixing(
    model: nn.Module,
    mixing: str | Mixing,
    seed: int = 0,
    smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
    exclude: Iterable[str] = (),
) -> MixingReport:
    """Freeze the spatial or channel mixers of ANY model in place, at seeded random values.

    ``chans``/``chans-smooth`` freeze every depthwise conv, ``space`` every pointwise conv, ``full``
    changes nothing. Modules whose qualified name matches a glob in ``exclude`` are left alone (e.g. a
    1x1 stem or a shortcut projection that is not part of a separable conv). One generator seeded with
    ``seed`` draws the frozen weights in module order. Raises ``ValueError`` for a model without
    depthwise convs, which has no spatial/channel split to study.
    """
    mixing = parse_mixing(mixing)
    if smooth_sigma < 0:
        raise RandmixError(f"smooth_sigma must be >= 0, got {smooth_sigma}")
    sigma = smooth_sigma if mixing is Mixing.CHANS_SMOOTH else 0.0
    report = MixingReport(mixing=mixing, seed=seed, smooth_sigma=sigma)
    excluded = list(exclude)
    convs = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and not any(fnmatch.fnmatchcase(name, pat) for pat in excluded)
    ]
    if mixing is not Mixing.FULL:
        if not any(is_spatial_mixer(m) for _, m in convs):
            raise RandmixError(
                f"{type(model).__name__} has no depthwise convolutions (groups == in_channels == "
                "out_channels), so it has no spatial mixing to separate; use a separable model "
                "(e.g. randmix_convmixer_256_8, convnext_atto, mobilenetv3_small_100) or mixing='full'"
            )
        select = is_channel_mixer if mixing.frozen_side == "channel" else is_spatial_mixer
        generator = torch.Generator().manual_seed(seed)
        for name, conv in convs:
            if select(conv) and not isinstance(conv, FrozenConv2d):
                frozen = FrozenConv2d(conv, generator, smooth_sigma=sigma)
                _set_submodule(model, name, frozen)
                report.frozen_modules.append(name)
                report.frozen_params += frozen.weight.numel()
    report.trainable_params, _ = count_parameters(model)
    return report
