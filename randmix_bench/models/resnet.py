"""CIFAR ResNet-18 (3x3 stem, no max-pool) with every residual 3x3 conv split into spatial + channel.

Each 3x3 conv of a basic block becomes a depthwise 3x3 (spatial mixing, carrying the block's stride)
followed by a pointwise 1x1 (channel mixing). ``mixing`` freezes one side of every split; the stem,
the shortcut projections and the head are always learned.
"""

from collections.abc import Sequence
from typing import Any

import torch
from timm.models import generate_default_cfgs, register_model
from torch import nn
from torch.utils.checkpoint import checkpoint_sequential

from randmix_bench.freezing import DEFAULT_SMOOTH_SIGMA, MixingReport, freeze_mixing
from randmix_bench.vocab import Mixing

from ._common import Normalize, StagedClassifier, build, cfg_32px, with_dataset_tags

__all__ = ["ResNet", "SeparableBasicBlock"]


class SeparableConv(nn.Sequential):
    """Depthwise k x k (``spatial``) then pointwise 1x1 (``channel``), both without bias (BN follows)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(in_chs, in_chs, 3, stride=stride, padding=1, groups=in_chs, bias=False)
        self.channel = nn.Conv2d(in_chs, out_chs, 1, bias=False)


class SeparableBasicBlock(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = SeparableConv(in_chs, out_chs, stride)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.conv2 = SeparableConv(out_chs, out_chs)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chs != out_chs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet(StagedClassifier):
    """CIFAR-style ResNet of separable basic blocks, taking [0, 1] images."""

    stages_name = "stages"

    def __init__(
        self,
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        in_chans: int = 3,
        num_classes: int = 10,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        mixing: str | Mixing = "full",
        mixer_seed: int = 0,
        smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std, in_chans)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        )
        self.feature_info = [dict(num_chs=widths[0], reduction=1, module="stem.2")]
        stages: list[nn.Module] = []
        in_chs = widths[0]
        for i, (depth, width) in enumerate(zip(layers, widths, strict=True)):
            blocks = []
            for j in range(depth):
                blocks.append(SeparableBasicBlock(in_chs, width, stride=2 if i > 0 and j == 0 else 1))
                in_chs = width
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=width, reduction=2**i, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self._init_head(in_chs, num_classes, global_pool, drop_rate)
        self.mixing: MixingReport = freeze_mixing(
            self, mixing, seed=mixer_seed, smooth_sigma=smooth_sigma, exclude=["stem*", "*.shortcut.*"]
        )

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, str]:
        return dict(stem=r"^stem", blocks=r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.normalize(x))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_sequential(self.stages, len(self.stages), x, use_reentrant=False)
        return self.stages(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> ResNet:
    # features_only: the stem's and every stage's output unless out_indices says otherwise
    feature_cfg = dict(flatten_sequential=True, out_indices=tuple(range(len(kwargs["layers"]) + 1)))
    return build(ResNet, variant, pretrained, feature_cfg, **kwargs)


default_cfgs = generate_default_cfgs(with_dataset_tags(
    {
        "randmix_resnet18.untrained": cfg_32px(pool_size=(4, 4)),
        "randmix_resnet_tiny.untrained": cfg_32px(pool_size=(16, 16)),
        "randmix_resnet_small.untrained": cfg_32px(pool_size=(8, 8)),
    }
))


@register_model
def randmix_resnet18(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """CIFAR ResNet-18 with separable (depthwise 3x3 + pointwise 1x1) residual convs."""
    return _create("randmix_resnet18", pretrained, **dict(dict(layers=(2, 2, 2, 2)), **kwargs))


@register_model
def randmix_resnet_tiny(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """Two stages of one block, widths 16/32: for tests and CPU smoke runs."""
    args = dict(layers=(1, 1), widths=(16, 32))
    return _create("randmix_resnet_tiny", pretrained, **dict(args, **kwargs))


@register_model
def randmix_resnet_small(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """Three stages of one block, widths 8/16/32: the small tier's separable ResNet (AutoAttack on a 2-core CPU)."""
    args = dict(layers=(1, 1, 1), widths=(8, 16, 32))
    return _create("randmix_resnet_small", pretrained, **dict(args, **kwargs))
