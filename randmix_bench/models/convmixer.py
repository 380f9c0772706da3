"""ConvMixer ("Patches Are All You Need?", Trockman & Kolter) with frozen-random mixing variants.

Each block is a residual depthwise conv (spatial mixing) followed by a pointwise conv (channel mixing),
so ``mixing`` freezes one side of every block; the patch stem and the classifier head are always learned.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from timm.models import generate_default_cfgs, register_model
from torch import nn
from torch.utils.checkpoint import checkpoint_sequential

from randmix_bench.freezing import DEFAULT_SMOOTH_SIGMA, MixingReport, freeze_mixing
from randmix_bench.vocab import Mixing

from ._common import Normalize, StagedClassifier, build, cfg_32px, with_dataset_tags

__all__ = ["ConvMixer", "ConvMixerBlock"]


class ConvMixerBlock(nn.Module):
    def __init__(self, dim: int, kernel_size: int, act_layer: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(dim, dim, kernel_size, groups=dim, padding="same")
        self.act1 = act_layer()
        self.norm1 = nn.BatchNorm2d(dim)
        self.channel = nn.Conv2d(dim, dim, kernel_size=1)
        self.act2 = act_layer()
        self.norm2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.norm1(self.act1(self.spatial(x)))
        return self.norm2(self.act2(self.channel(x)))


def mixer_feature_info(dim: int, depth: int, reduction: int) -> list[dict[str, Any]]:
    """The stem's output, then every block's: an isotropic network has one feature map per block."""
    names = ["stem.2"] + [f"blocks.{i}" for i in range(depth)]
    return [dict(num_chs=dim, reduction=reduction, module=name) for name in names]


class MixerBlocks(nn.Module):
    """What every isotropic ConvMixer-style network (``normalize -> stem -> blocks``) shares: its features
    and timm's parameter groups, for the classifier and the un-shuffler alike."""

    if TYPE_CHECKING:  # set by subclasses; hidden from TorchScript, which rejects nn.Module annotations
        normalize: nn.Module
        stem: nn.Module
        blocks: nn.Sequential

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, str]:
        return dict(stem=r"^stem", blocks=r"^blocks\.(\d+)")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.normalize(x))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_sequential(self.blocks, len(self.blocks), x, use_reentrant=False)
        return self.blocks(x)


class ConvMixer(MixerBlocks, StagedClassifier):
    """ConvMixer-``dim``/``depth`` classifier taking [0, 1] images."""

    stages_name = "blocks"

    def __init__(
        self,
        dim: int,
        depth: int,
        kernel_size: int = 5,
        patch_size: int = 2,
        in_chans: int = 3,
        num_classes: int = 10,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        mixing: str | Mixing = "full",
        mixer_seed: int = 0,
        smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
        drop_rate: float = 0.0,
        act_layer: type[nn.Module] = nn.GELU,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std, in_chans)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size), act_layer(), nn.BatchNorm2d(dim)
        )
        self.blocks = nn.Sequential(*[ConvMixerBlock(dim, kernel_size, act_layer) for _ in range(depth)])
        self.feature_info = mixer_feature_info(dim, depth, patch_size)
        self._init_head(dim, num_classes, global_pool, drop_rate)
        self.mixing: MixingReport = freeze_mixing(
            self, mixing, seed=mixer_seed, smooth_sigma=smooth_sigma, exclude=["stem*"]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> ConvMixer:
    # features_only: every feature map unless out_indices says otherwise, replayed from the flattened children
    feature_cfg = dict(flatten_sequential=True, out_indices=tuple(range(kwargs["depth"] + 1)))
    return build(ConvMixer, variant, pretrained, feature_cfg, **kwargs)


default_cfgs = generate_default_cfgs(with_dataset_tags(
    {
        "randmix_convmixer_256_8.untrained": cfg_32px(pool_size=(16, 16)),
        "randmix_convmixer_512_16.untrained": cfg_32px(pool_size=(32, 32)),
        "randmix_convmixer_64_8.untrained": cfg_32px(pool_size=(16, 16)),
        "randmix_convmixer_tiny.untrained": cfg_32px(pool_size=(8, 8)),
        "randmix_convmixer_small.untrained": cfg_32px(pool_size=(8, 8)),
    }
))


@register_model
def randmix_convmixer_256_8(pretrained: bool = False, **kwargs: Any) -> ConvMixer:
    """ConvMixer-256/8, kernel 5, patch 2: the public convmixer-cifar10 network."""
    args = dict(dim=256, depth=8, kernel_size=5, patch_size=2)
    return _create("randmix_convmixer_256_8", pretrained, **dict(args, **kwargs))


@register_model
def randmix_convmixer_512_16(pretrained: bool = False, **kwargs: Any) -> ConvMixer:
    """ConvMixer-512/16, kernel 7, patch 1: the size of the paper's pixel un-shuffling network."""
    args = dict(dim=512, depth=16, kernel_size=7, patch_size=1)
    return _create("randmix_convmixer_512_16", pretrained, **dict(args, **kwargs))


@register_model
def randmix_convmixer_64_8(pretrained: bool = False, **kwargs: Any) -> ConvMixer:
    """ConvMixer-64/8, kernel 5, patch 2: the medium tier's network, the 256/8 at a quarter of its width, sized so
    that 3-5 seeds of every variant train and are attacked on a 2-core CPU in a few hours."""
    args = dict(dim=64, depth=8, kernel_size=5, patch_size=2)
    return _create("randmix_convmixer_64_8", pretrained, **dict(args, **kwargs))


@register_model
def randmix_convmixer_tiny(pretrained: bool = False, **kwargs: Any) -> ConvMixer:
    """ConvMixer-32/2, kernel 3, patch 4: for tests and CPU smoke runs."""
    args = dict(dim=32, depth=2, kernel_size=3, patch_size=4)
    return _create("randmix_convmixer_tiny", pretrained, **dict(args, **kwargs))


@register_model
def randmix_convmixer_small(pretrained: bool = False, **kwargs: Any) -> ConvMixer:
    """ConvMixer-32/4, kernel 5, patch 4: the small tier's ConvMixer, sized so that the whole tier (3 seeds x
    4 variants x 2 datasets, AutoAttack standard) reproduces on a 2-core CPU."""
    args = dict(dim=32, depth=4, kernel_size=5, patch_size=4)
    return _create("randmix_convmixer_small", pretrained, **dict(args, **kwargs))
