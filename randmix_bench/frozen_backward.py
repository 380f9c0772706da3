"""Training a convolution whose weight is frozen without computing that weight's gradient.

On the CPU, oneDNN computes a convolution's bias gradient together with its weight gradient, so a frozen conv whose
bias is learned pays for the weight gradient it throws away: for a depthwise conv (the spatial mixer that ``chans``
freezes) the costliest part of its backward (4x its input gradient for the medium unshuffler's 9x9 one). A training
step of ``chans`` is 1.9x faster for the medium unshuffler and 1.55-1.58x for the ConvMixer-64/8 without it
(``benchmarks/frozen_conv_backward.py``); ``full`` needs the gradient and is unchanged.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["conv2d_without_weight_grad", "explicit_padding"]


class _ConvWithoutWeightGrad(torch.autograd.Function):
    """``F.conv2d`` whose backward never computes the weight gradient, for a frozen weight and a learned bias.

    The forward is ``F.conv2d``, bit for bit; the input gradient is ``convolution_backward``'s, as autograd's; the
    bias gradient is the sum of the output gradient, which differs
    from oneDNN's in the last bits only (so training, not any forward or input gradient, moves by rounding).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: tuple[int, ...],
                padding: list[int], dilation: tuple[int, ...], groups: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.geometry = list(stride), padding, list(dilation), groups
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, torch.Tensor | None, None, None,
                                                         None, None]:
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.geometry
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(grad, x, weight, None, stride, padding, dilation, False,
                                                         [0, 0], groups, [True, False, False])[0]
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2, 3))
        return grad_x, None, grad_bias, None, None, None, None


def explicit_padding(conv: nn.Conv2d) -> list[int] | None:
    """``conv``'s padding as the two numbers ``F.conv2d`` and ``convolution_backward`` take; None where it is not
    two numbers (``same`` whose total padding ``dilation * (kernel - 1)`` is odd, so uneven, or a padding mode
    other than zeros): those keep autograd's path."""
    if conv.padding_mode != "zeros":
        return None
    if conv.padding == "valid":
        return [0, 0]
    if conv.padding == "same":  # nn.Conv2d refuses it with a stride
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
        return None if any(t % 2 for t in total) else [t // 2 for t in total]
    return list(cast(tuple[int, int], conv.padding))


def conv2d_without_weight_grad(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: tuple[int, ...],
                               padding: list[int], dilation: tuple[int, ...], groups: int) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, ...)`` whose backward gives ``x`` and ``bias`` their gradients and never computes
    ``weight``'s (see :class:`_ConvWithoutWeightGrad`)."""
    return cast(torch.Tensor, _ConvWithoutWeightGrad.apply(x, weight, bias, stride, padding, dilation, groups))
