"""The model as attacks run it: eval mode, weights without gradients, channels-last, and on a CPU three layers
swapped for faster ones that compute the same function.

Attacks need input gradients only, so backward skips every weight-gradient kernel and its memory. Channels-last
is oneDNN's fast layout for the depthwise and 1x1 convolutions. Three CPU kernels are slow in that layout
(benchmarks/RESULTS.md): torch sends a contiguous float tensor to oneDNN's exact GELU but a channels-last one to
its own, 1.7-1.9x slower forward and backward; an eval-mode BatchNorm runs the general normalization kernel
where a per-channel multiply-add suffices; and a patch embedding (a convolution whose kernel is its stride: a
ConvMixer's or a ViT's stem) runs its forward and input gradient 1.2-3.7x slower through oneDNN than as the matmul
it is, at the published ConvMixers' stems. Swapped, an attack step of a ConvMixer is 1.34-1.43x faster on a CPU
(GELU and BatchNorm); the stem's matmul makes the small published ConvMixer's step 1.23x faster again, and its whole
``randmix eval`` 1.13x (the medium one's step 1.00x: its stem is a small part of it).
GELU and BatchNorm round differently in the last bits (logits move by a few 1e-6, about 1e-7 of their size), as
any change of kernel or layout does; the per-point outcomes they give are checked against the stock script's in
``benchmarks/cpu_speed.py``. The patch embedding's matmul gave the same bits as oneDNN on every published model
in ``benchmarks/attack_layers.py --published-bits`` (Intel Xeon with AVX-512, torch 2.14.1; clean and perturbed test
points, batches of 1 to 250, 1 and 2 threads); another machine or library may round differently. Of the other
shapes measured, a 3->64 stem with patch 2 ran at about oneDNN's speed. The stand-ins are built from their layers'
values when the block starts. Inside the block the swapped layers are other modules: hooks on them do not fire and
``state_dict()`` and ``named_parameters()`` lack their entries; attacks need neither.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TypeGuard

import torch
import torch.nn.functional as F
from torch import nn

from randmix_bench.tensors import eval_mode

__all__ = ["BatchNormAffine", "ChannelsLastInputs", "NHWCGELU", "PatchEmbedMatmul", "attack_mode"]


class NHWCGELU(nn.Module):
    """``nn.GELU`` computed on a channels-last map's NHWC view, which is contiguous, so torch runs oneDNN's exact
    GELU on it (forward and backward) instead of its own slower channels-last kernel."""

    def __init__(self, approximate: str) -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            return F.gelu(x.permute(0, 2, 3, 1), approximate=self.approximate).permute(0, 3, 1, 2)
        return F.gelu(x, approximate=self.approximate)


class BatchNormAffine(nn.Module):
    """An eval-mode ``BatchNorm2d`` as the per-channel affine map it is, ``x * scale + shift`` in one pass (the
    same map, rounded differently: outputs move by a few 1e-6 at most)."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        assert bn.running_var is not None and bn.running_mean is not None  # see _swappable
        with torch.no_grad():
            scale = 1 / torch.sqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            shift = -bn.running_mean * scale
            if bn.bias is not None:
                shift = shift + bn.bias
        self.register_buffer("scale", scale.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:  # as BatchNorm2d: a 3-d input would broadcast into a wrong 4-d output
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")
        return torch.addcmul(self.shift, x, self.scale)


class PatchEmbedMatmul(nn.Module):
    """A convolution whose kernel is its stride, without padding, dilation or groups, as the matmul it is: each
    output pixel is its patch (flattened in the channels-last order of the input) times the weight matrix."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    weight_matrix: torch.Tensor

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.kernel_size = conv.kernel_size
        weight = conv.weight.detach()
        self.register_buffer("weight", weight, persistent=False)  # for the inputs only the convolution handles
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach(), persistent=False)
        # [out, in, kh, kw] -> [kh * kw * in, out]: the rows in a channels-last patch's memory order
        matrix = weight.permute(2, 3, 1, 0).reshape(-1, conv.out_channels).contiguous()
        self.register_buffer("weight_matrix", matrix, persistent=False)

    @staticmethod
    def fits(module: nn.Module) -> TypeGuard[nn.Conv2d]:
        """Whether ``module`` is a plain ``nn.Conv2d`` patch embedding (a 1x1 convolution is left to oneDNN: the
        matmul was 0.64-1.08x its speed, slower at the medium ConvMixer's size)."""
        return (type(module) is nn.Conv2d and module.kernel_size == module.stride and module.kernel_size != (1, 1)
                and module.padding in ((0, 0), "valid") and module.dilation == (1, 1) and module.groups == 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), weight = self.kernel_size, self.weight
        if (x.dim() != 4 or x.shape[1] != weight.shape[1] or x.shape[2] < kh or x.shape[3] < kw
                or x.dtype != weight.dtype or x.device != weight.device):
            # unbatched, or an input the convolution refuses: its result, or its own error
            return F.conv2d(x, weight, self.bias, self.kernel_size)
        n, c, h, w = x.shape
        rows, cols = h // kh, w // kw  # the convolution drops a remainder that fills no patch
        patches = (x[:, :, : rows * kh, : cols * kw].permute(0, 2, 3, 1).reshape(n, rows, kh, cols, kw, c)
                   .transpose(2, 3).reshape(n * rows * cols, kh * kw * c))
        if self.bias is None:
            out = torch.mm(patches, self.weight_matrix)
        else:
            out = torch.addmm(self.bias, patches, self.weight_matrix)
        return out.view(n, rows, cols, weight.shape[0]).permute(0, 3, 1, 2)


def _swappable(module: nn.Module) -> nn.Module | None:
    """The faster stand-in for ``module``, or None. Exact types only: a subclass may do more in its forward."""
    if type(module) is nn.GELU:
        return NHWCGELU(module.approximate)
    if type(module) is nn.BatchNorm2d and module.running_mean is not None and module.running_var is not None:
        return BatchNormAffine(module)
    if PatchEmbedMatmul.fits(module):
        return PatchEmbedMatmul(module)
    return None


@contextmanager
def _cpu_layers_swapped(model: nn.Module) -> Iterator[None]:
    """``model`` with each swappable child replaced in its parent for the block. Every stand-in is built before the
    first swap, so a failure to build one leaves the model as it was."""
    swaps = [(parent, name, child, stand_in) for parent in model.modules()
             for name, child in parent.named_children() if (stand_in := _swappable(child)) is not None]
    try:
        for parent, name, child, stand_in in swaps:
            setattr(parent, name, stand_in.train(child.training))
        yield
    finally:
        for parent, name, child, _ in reversed(swaps):
            setattr(parent, name, child)


@contextmanager
def attack_mode(*models: nn.Module | None) -> Iterator[None]:
    """The models (a transfer attack's source beside the judged one; None and repeats skipped) as attacks run
    them (see the module's docstring) for the block, restored afterwards. Pair it with
    :class:`ChannelsLastInputs`, which hands attacks their gradients back in the layout of their inputs."""
    with ExitStack() as stack:
        for model in {id(m): m for m in models if m is not None}.values():
            stack.enter_context(_attack_mode(model))
        yield


@contextmanager
def _attack_mode(model: nn.Module) -> Iterator[None]:
    """One model in attack mode; afterwards its parameters' ``requires_grad`` is what it was, and their layout the
    standard one (checkpoints are saved in it)."""
    params = [(p, p.requires_grad) for p in model.parameters()]
    on_cpu = all(t.device.type == "cpu" for t in itertools.chain(model.parameters(), model.buffers()))
    try:
        model.requires_grad_(False)
        model.to(memory_format=torch.channels_last)
        with eval_mode(model), ExitStack() as stack:
            if on_cpu:
                stack.enter_context(_cpu_layers_swapped(model))
            yield
    finally:
        model.to(memory_format=torch.contiguous_format)
        for p, requires in params:
            p.requires_grad_(requires)


class _ChannelsLast(torch.autograd.Function):
    """Identity that passes a channels-last copy forward and a standard contiguous gradient back."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


class ChannelsLastInputs(nn.Module):
    """``model`` fed channels-last images; the input gradients attacks get back are contiguous, as AutoAttack
    expects them (its zero-gradient check calls ``view`` on them)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(_ChannelsLast.apply(x) if x.dim() == 4 else x)
