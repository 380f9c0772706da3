"""Isotropic ConvMixer image-to-image network for the pixel-shuffle track (arXiv 2503.16760, claim 3).

Patch size 1 and no pooling keep one feature vector per pixel from stem to head, so the network can
move each pixel's value to where it belongs; a 1x1 head maps back to the image's channels. The blocks
are the classifier's :class:`ConvMixerBlock`, so ``mixing`` freezes exactly the same convs as in the
classifiers; the 1x1 stem and head are always learned. To undo an arbitrary permutation a pixel must
be able to reach any other, so the receptive-field radius ``depth * (kernel_size - 1) / 2`` should be at
least the image side minus one (27 for MNIST, 31 for CIFAR).
"""

from collections.abc import Sequence
from typing import Any

import torch
from timm.models import generate_default_cfgs, register_model
from torch import nn

from randmix_bench.errors import RandmixError
from randmix_bench.freezing import DEFAULT_SMOOTH_SIGMA, MixingReport, freeze_mixing
from randmix_bench.vocab import Mixing

from ._common import Normalize, StagedNet, build, cfg_32px, with_dataset_tags
from .convmixer import ConvMixerBlock, MixerBlocks, mixer_feature_info

__all__ = ["Unshuffler", "UNSHUFFLER_MODELS"]

UNSHUFFLER_MODELS = (
    "randmix_unshuffler_512_16",
    "randmix_unshuffler_256_8",
    "randmix_unshuffler_64_8",
    "randmix_unshuffler_16_7",
    "randmix_unshuffler_8_7",
    "randmix_unshuffler_tiny",
)
"""The registered image-to-image models: trained by ``randmix shuffle train``, not ``randmix train``."""


class Unshuffler(MixerBlocks, StagedNet):
    """ConvMixer-``dim``/``depth`` with patch size 1: [0, 1] image in, [0, 1]-scaled image out.

    The head predicts in the normalized space and the output is mapped back with the same mean/std,
    so the loss compares images on the [0, 1] scale. The output is not clamped (clamping would kill the
    gradient of out-of-range pixels); metrics clamp it.

    Of timm's model API it has the feature side (``feature_info``, ``forward_features``,
    ``forward_intermediates``, ``features_only=True``), not the classifier side: there are no classes,
    no pooled features and no classifier to reset or prune; the 1x1 ``head`` is the image decoder.
    """

    stages_name = "blocks"

    def __init__(
        self,
        dim: int,
        depth: int,
        kernel_size: int = 7,
        in_chans: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        mixing: str | Mixing = "full",
        mixer_seed: int = 0,
        smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
        act_layer: type[nn.Module] = nn.GELU,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes:
            raise RandmixError(
                f"unshuffler models are image-to-image networks without classes (got num_classes={num_classes}); "
                "train them with `randmix shuffle train`"
            )
        self.in_chans = in_chans
        self.normalize = Normalize(mean, std, in_chans)
        self.stem = nn.Sequential(nn.Conv2d(in_chans, dim, kernel_size=1), act_layer(), nn.BatchNorm2d(dim))
        self.blocks = nn.Sequential(*[ConvMixerBlock(dim, kernel_size, act_layer) for _ in range(depth)])
        self.feature_info = mixer_feature_info(dim, depth, reduction=1)
        self.head = nn.Conv2d(dim, in_chans, kernel_size=1)
        self.mixing: MixingReport = freeze_mixing(
            self, mixing, seed=mixer_seed, smooth_sigma=smooth_sigma, exclude=["stem*", "head*"]
        )
        # Channels-last parameters make every conv run channels-last (layouts follow the weights, and
        # ``.to(device)`` keeps them): oneDNN's NCHW depthwise backward is ~10x slower on the CPU, and
        # cuDNN prefers channels-last too. Checkpoints are unaffected (saved contiguous).
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.forward_features(x))
        return out * self.normalize.std + self.normalize.mean


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> Unshuffler:
    # features_only: every feature map unless out_indices says otherwise, replayed from the flattened children
    feature_cfg = dict(flatten_sequential=True, out_indices=tuple(range(kwargs["depth"] + 1)))
    return build(Unshuffler, variant, pretrained, feature_cfg, **kwargs)


def _cfg() -> dict[str, Any]:
    # num_classes < 0: timm passes no num_classes to the constructor; there is no classifier and no pool
    return cfg_32px(num_classes=-1, classifier=None, paper_ids="arXiv:2503.16760")


default_cfgs = generate_default_cfgs(with_dataset_tags({f"{name}.untrained": _cfg() for name in UNSHUFFLER_MODELS}))


@register_model
def randmix_unshuffler_512_16(pretrained: bool = False, **kwargs: Any) -> Unshuffler:
    """Width 512, depth 16, kernel 7 (receptive radius 48): the paper's "large" un-shuffling network."""
    args = dict(dim=512, depth=16, kernel_size=7)
    return _create("randmix_unshuffler_512_16", pretrained, **dict(args, **kwargs))


@register_model
def randmix_unshuffler_256_8(pretrained: bool = False, **kwargs: Any) -> Unshuffler:
    """Width 256, depth 8, kernel 9 (receptive radius 32, enough for 32x32): a mid-size GPU run."""
    args = dict(dim=256, depth=8, kernel_size=9)
    return _create("randmix_unshuffler_256_8", pretrained, **dict(args, **kwargs))


@register_model
def randmix_unshuffler_64_8(pretrained: bool = False, **kwargs: Any) -> Unshuffler:
    """Width 64, depth 8, kernel 9 (receptive radius 32, enough for 28x28): the medium tier's unshuffler."""
    args = dict(dim=64, depth=8, kernel_size=9)
    return _create("randmix_unshuffler_64_8", pretrained, **dict(args, **kwargs))


@register_model
def randmix_unshuffler_16_7(pretrained: bool = False, **kwargs: Any) -> Unshuffler:
    """Width 16, depth 7, kernel 9 (receptive radius 28, enough for 28x28): a Fashion-MNIST epoch in
    minutes on a 2-core CPU."""
    args = dict(dim=16, depth=7, kernel_size=9)
    return _create("randmix_unshuffler_16_7", pretrained, **dict(args, **kwargs))


@register_model
def randmix_unshuffler_8_7(pretrained: bool = False, **kwargs: Any) -> Unshuffler:
    """Width 8, depth 7, kernel 9 (receptive radius 28): the small tier's unshuffler, about half the cost of
    ``randmix_unshuffler_16_7`` so that 9 runs fit the tier's CPU budget."""
    args = dict(dim=8, depth=7, kernel_size=9)
    return _create("randmix_unshuffler_8_7", pretrained, **dict(args, **kwargs))


@register_model
def randmix_unshuffler_tiny(pretrained: bool = False, **kwargs: Any) -> Unshuffler:
    """Width 16, depth 2, kernel 3: for tests (its receptive field is far too small to unscramble)."""
    args = dict(dim=16, depth=2, kernel_size=3)
    return _create("randmix_unshuffler_tiny", pretrained, **dict(args, **kwargs))
