"""Freezing spatial or channel mixing: the one place that knows which layers are which, and freezes them.

A separable convolution is a depthwise conv (spatial mixing: each channel filtered on its own) followed
by a pointwise 1x1 conv (channel mixing); channels-last models such as ConvNeXt mix channels with
``nn.Linear`` layers applied per pixel instead. arXiv 2503.16760 freezes one of the two sides at its
random initialization and learns the other. Frozen weights here are *buffers*, not parameters, so no
optimizer, weight decay or ``requires_grad`` slip can move them, and they are saved in the state dict.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from timm.layers import Conv2dSame, SelectAdaptivePool2d, pad_same
from torch import nn

from randmix_bench.errors import RandmixError
from randmix_bench.frozen_backward import conv2d_without_weight_grad, explicit_padding
from randmix_bench.vocab import Mixing

__all__ = [
    "FrozenConv2d",
    "FrozenLinear",
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


def is_spatial_mixer(module: nn.Module) -> bool:
    """A depthwise conv: every channel filtered on its own (groups == in == out channels)."""
    return (
        isinstance(module, nn.Conv2d)
        and module.groups == module.in_channels == module.out_channels
        and module.kernel_size != (1, 1)
    )


def is_channel_mixer(module: nn.Module) -> bool:
    """A per-pixel linear map across channels: a 1x1, stride-1, ungrouped conv, or an ``nn.Linear``.

    This is the layer's shape only; whether a Linear sees pixels or pooled features is decided by
    where it sits (see :func:`freeze_mixing`).
    """
    if isinstance(module, nn.Linear):
        return True
    return (
        isinstance(module, nn.Conv2d)
        and module.kernel_size == (1, 1)
        and module.stride == (1, 1)
        and module.groups == 1
    )


def default_init_bound(weight_shape: torch.Size) -> float:
    """Bound of PyTorch's default conv/Linear init, kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), +).

    ``fan_in`` is ``shape[1]`` times the kernel area, as in ``nn.init._calculate_fan_in_and_fan_out``.
    """
    return 1.0 / math.sqrt(math.prod(weight_shape[1:]))


def _draw_default_init(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Fresh float32 CPU weights of ``weight``'s shape from the default init, so a seed is device-independent."""
    bound = default_init_bound(weight.shape)
    return torch.empty(weight.shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)


def _hold_as_buffer(frozen: nn.Conv2d | nn.Linear, source: nn.Conv2d | nn.Linear, weight: torch.Tensor) -> None:
    """Make ``weight`` the buffer ``frozen.weight`` (on ``source``'s device/dtype) and keep ``source``'s bias.

    The bias (a per-channel shift, which mixes neither space nor channels) stays a learned parameter.
    """
    del frozen.weight
    frozen.register_buffer("weight", weight.to(device=source.weight.device, dtype=source.weight.dtype))
    frozen.bias = source.bias


def gaussian_smooth(weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """Low-pass each k x k filter with a Gaussian of std ``sigma``, keeping each filter's L2 norm.

    Keeping the norm keeps the layer's output scale, so smoothing changes *which* frequencies pass,
    not how much signal does. The Gaussian is cut at 2 sigma, or at k - 1 taps where that is nearer: a tap further
    out never meets the k x k filter, and the norm is restored anyway, so any sigma gives a small kernel.
    """
    if sigma <= 0:
        return weight
    out_ch, in_per_group, kh, kw = weight.shape
    radius = max(1, math.ceil(min(2 * sigma, max(kh, kw) - 1)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g1 = torch.exp(-0.5 * (x / sigma) ** 2)  # not x**2 / (2 sigma**2): that is 0/0 at x = 0 for a tiny sigma
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

    The bias stays a learned parameter. The weight is drawn on the CPU in float32, so a seed gives the
    same filters on every device. A depthwise one with a learned bias skips the frozen weight's gradient on the CPU
    (:mod:`~randmix_bench.frozen_backward`); everything else runs ``nn.Conv2d``'s forward, after timm's dynamic
    ``same`` padding where the frozen conv was a ``Conv2dSame`` (TensorFlow-ported models).
    """

    def __init__(self, conv: nn.Conv2d, generator: torch.Generator, smooth_sigma: float = 0.0) -> None:
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            cast(tuple[int, int], conv.kernel_size),
            stride=cast(tuple[int, int], conv.stride),
            padding=cast("str | tuple[int, int]", conv.padding),
            dilation=cast(tuple[int, int], conv.dilation),
            groups=conv.groups,
            bias=False,
            padding_mode=conv.padding_mode,
            device="meta",
        )
        _hold_as_buffer(self, conv, gaussian_smooth(_draw_default_init(conv.weight, generator), smooth_sigma))
        self.smooth_sigma = smooth_sigma
        self.pad_same = isinstance(conv, Conv2dSame)  # its padding depends on the input's size
        # depthwise only: a frozen 1x1 conv's weight gradient is a cheap matmul, and summing its bias gradient
        # apart measured slower
        self._padding = explicit_padding(self) if is_spatial_mixer(self) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_same:
            x = pad_same(x, self.weight.shape[-2:], self.stride, self.dilation)
        if torch.jit.is_scripting():
            return self._conv_forward(x, self.weight, self.bias)
        return self._eager_forward(x)

    @torch.jit.unused
    def _eager_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outside TorchScript; a trace (FX's, where ``x`` is a proxy, or ``torch.jit.trace``) records the plain
        convolution."""
        bias = self.bias
        if (isinstance(x, torch.fx.Proxy) or torch.jit.is_tracing() or bias is None or not bias.requires_grad
                or not torch.is_grad_enabled() or x.device.type != "cpu" or torch.is_autocast_enabled("cpu")
                or self._padding is None):
            return self._conv_forward(x, self.weight, bias)
        return conv2d_without_weight_grad(x, self.weight, bias, self.stride, self._padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        extra = f", smooth_sigma={self.smooth_sigma}" if self.smooth_sigma else ""
        return super().extra_repr() + ", frozen=True" + extra


class FrozenLinear(nn.Linear):
    """An ``nn.Linear`` channel mixer whose weight is a buffer drawn like :class:`FrozenConv2d`'s."""

    def __init__(self, linear: nn.Linear, generator: torch.Generator) -> None:
        super().__init__(linear.in_features, linear.out_features, bias=False, device="meta")
        _hold_as_buffer(self, linear, _draw_default_init(linear.weight, generator))

    def extra_repr(self) -> str:
        return super().extra_repr() + ", frozen=True"


FROZEN_MIXERS = (FrozenConv2d, FrozenLinear)


@dataclass
class MixingReport:
    """What :func:`freeze_mixing` changed, and why every other conv/Linear was left alone."""

    mixing: Mixing
    seed: int
    smooth_sigma: float
    frozen_modules: list[str] = field(default_factory=list)
    left: dict[str, str] = field(default_factory=dict)  # conv/Linear name -> why it was not frozen (empty for full)
    frozen_params: int = 0  # elements now held in frozen buffers
    trainable_params: int = 0  # elements still learned, in the whole module after the change

    def __str__(self) -> str:
        return (
            f"mixing={self.mixing.value}: froze {len(self.frozen_modules)} mixers "
            f"({self.frozen_params:,} weights), left {len(self.left)} convs/Linears; "
            f"{self.trainable_params:,} trainable parameters remain"
        )

    def details(self) -> str:
        """One line per conv/Linear: frozen, or left alone with the reason, for reviewing a new model."""
        lines = [f"{name}: frozen" for name in self.frozen_modules]
        lines += [f"{name}: {reason}" for name, reason in self.left.items()]
        return "\n".join(lines)


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable parameters, frozen mixer weights) of ``module``."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(m.weight.numel() for m in module.modules() if isinstance(m, FROZEN_MIXERS))
    return trainable, frozen


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, SelectAdaptivePool2d)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


class _FeaturePath:
    """Where a model's feature path begins and ends, read from its module tree (rule in :func:`freeze_mixing`)."""

    def __init__(self, model: nn.Module) -> None:
        modules = dict(model.named_modules())
        order = list(modules)
        first_conv = next((n for n, m in modules.items() if isinstance(m, nn.Conv2d)), None)
        self.stem = (first_conv.rpartition(".")[0] or first_conv) if first_conv else None
        pools = [n for n, m in modules.items() if isinstance(m, _POOLS) and n.count(".") <= 1]
        outer_pools = [n for n in pools if not any(_within(n, p) and n != p for p in pools)]
        self.global_pool = outer_pools[-1] if outer_pools else None
        self.after_pool = set(order[order.index(self.global_pool) + 1 :]) if self.global_pool else set()
        classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
        self.classifier = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        self.gates = [n for n, m in modules.items() if n and self._is_gate(n, m)]
        self.blocks = {n for n, m in model.named_children() if any(is_spatial_mixer(c) for c in m.modules())}

    def _is_gate(self, name: str, module: nn.Module) -> bool:
        """A squeeze-excitation-like gate: named ``se``, a SqueezeExcite class, or holding its own adaptive pool."""
        if isinstance(module, _POOLS) or (self.global_pool is not None and _within(self.global_pool, name)):
            return False
        own_pool = any(isinstance(c, _POOLS) for c in module.children())
        return name.rpartition(".")[2] == "se" or "SqueezeExcit" in type(module).__name__ or own_pool

    def why_not(self, name: str) -> str | None:
        """Why the layer ``name`` is not a mixer of the feature map, or ``None`` when it is one."""
        if self.stem is not None and _within(name, self.stem):
            return "stem (reads the image), excluded"
        if name in self.after_pool:
            return f"after the global pool ({self.global_pool})"
        if any(_within(name, c) for c in self.classifier):
            return "classifier"
        gate = next((g for g in self.gates if _within(name, g)), None)
        if gate is not None:
            return f"squeeze-excitation gate ({gate}) on pooled features, not spatial/channel mixing of the feature map"
        top = name.partition(".")[0]
        if top not in self.blocks:
            return f"outside the blocks ({top} holds no depthwise conv: a stem/head projection)"
        return None


def _describe(module: nn.Conv2d | nn.Linear) -> str:
    if isinstance(module, nn.Linear):
        return "Linear"
    kh, kw = module.kernel_size
    return f"{kh}x{kw} conv, stride {module.stride[0]}, groups {module.groups}"


def freeze_mixing(
    model: nn.Module,
    mixing: str | Mixing,
    seed: int = 0,
    smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
    exclude: Iterable[str] = (),
) -> MixingReport:
    """Freeze the spatial or channel mixers of ANY model's feature path in place, at seeded random values.

    ``chans``/``chans-smooth`` freeze depthwise convs; ``space`` freezes channel mixers (1x1 stride-1
    convs, and ``nn.Linear`` layers, which channels-last blocks such as ConvNeXt's MLP apply per pixel);
    ``full`` changes nothing. Only layers that mix the full-resolution feature map inside the blocks are
    frozen. Decided from the module tree, in this order, a conv or Linear is left alone when

    1. its qualified name matches a glob in ``exclude`` (e.g. a shortcut projection);
    2. it is the stem: the first conv of the model (it reads the image) and the modules beside it;
    3. it is registered after the global pool (the last adaptive pool that is a child of the model or of
       its head), e.g. MobileNetV3's ``conv_head`` and every classifier, or is ``pretrained_cfg["classifier"]``;
    4. it sits in a gate on pooled features: a module named ``se``, a SqueezeExcite, or one holding its own
       adaptive pool (``se.conv_reduce``/``se.conv_expand`` of MobileNetV3 and EfficientNet);
    5. it is outside the blocks: its top-level module holds no depthwise conv (EfficientNet's ``conv_head``);
    6. it is not of the frozen side's kind.

    The report says which rule left each conv/Linear, and is also attached as ``model.mixing`` (as on the randmix
    models), so ``model.mixing.details()`` reviews any frozen model. One generator seeded with ``seed`` draws the frozen
    weights in module order. Raises :class:`RandmixError` for a model without depthwise convs (no
    spatial/channel split to study), a model with nothing to freeze, or a negative/non-finite sigma.
    """
    mixing = Mixing.parse(mixing)  # a member as is; text from timm's create_model(..., mixing="chans") or a checkpoint
    if not math.isfinite(smooth_sigma) or smooth_sigma < 0:
        raise RandmixError(f"smooth_sigma must be a finite number >= 0, got {smooth_sigma}; e.g. pass 1.0")
    sigma = smooth_sigma if mixing is Mixing.CHANS_SMOOTH else 0.0
    report = MixingReport(mixing=mixing, seed=seed, smooth_sigma=sigma)
    excluded = list(exclude)
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if mixing is not Mixing.FULL:
        pattern = {name: next((p for p in excluded if fnmatch.fnmatchcase(name, p)), None) for name, _ in layers}
        if not any(is_spatial_mixer(m) for name, m in layers if pattern[name] is None):
            raise RandmixError(
                f"{type(model).__name__} has no depthwise convolutions (groups == in_channels == "
                "out_channels), so it has no spatial mixing to separate; use a separable model "
                "(e.g. randmix_convmixer_256_8, convnext_atto, mobilenetv3_small_100) or mixing='full'"
            )
        side = mixing.frozen_side
        select = is_channel_mixer if side == "channel" else is_spatial_mixer
        path = _FeaturePath(model)
        generator = torch.Generator().manual_seed(seed)
        for name, layer in layers:
            why = f"excluded by pattern {pattern[name]!r}" if pattern[name] is not None else path.why_not(name)
            if why is None and not select(layer):
                why = f"{_describe(layer)}: not a {side} mixer"
            if why is None and isinstance(layer, FROZEN_MIXERS):
                why = "already frozen"
            if why is not None:
                report.left[name] = why
                continue
            frozen: nn.Module
            if isinstance(layer, nn.Linear):
                frozen = FrozenLinear(layer, generator)
            else:
                frozen = FrozenConv2d(layer, generator, smooth_sigma=sigma)
            _set_submodule(model, name, frozen)
            report.frozen_modules.append(name)
            report.frozen_params += frozen.weight.numel()
        if not report.frozen_modules and "already frozen" not in report.left.values():
            raise RandmixError(
                f"mixing={mixing.value} found no {side} mixers on the feature path of {type(model).__name__}; "
                "see freeze_mixing's rule and MixingReport.details(), or use mixing='full'"
            )
    report.trainable_params, _ = count_parameters(model)
    _attach(model, report)
    return report


def _attach(model: nn.Module, report: MixingReport) -> None:
    """``model.mixing = report``, as the randmix models have it, so that ``model.mixing.details()`` works on any
    frozen model. A call that froze nothing more (the filters were already frozen) keeps the report of the call
    that froze them; a model whose own ``mixing`` attribute is something else keeps it (use the returned report)."""
    current = getattr(model, "mixing", None)
    if current is None or (isinstance(current, MixingReport) and report.frozen_modules):
        setattr(model, "mixing", report)  # noqa: B010  (nn.Module types its attributes as Tensor | Module)
