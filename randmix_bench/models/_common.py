"""Pieces every randmix model shares: in-model normalization, timm's feature/classifier API, default configs.

No ``from __future__ import annotations`` in the model modules: ``torch.fx`` copies ``forward``'s annotations
into the code it generates, and TorchScript cannot resolve them when they are strings.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from timm.layers import create_classifier
from timm.models._features import feature_take_indices
from torch import nn

from randmix_bench.errors import RandmixError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)

INPUT_MEAN = (0.0, 0.0, 0.0)
INPUT_STD = (1.0, 1.0, 1.0)
"""What the default configs say the input pipeline should normalize with: nothing, since the models take
[0, 1] images and normalize inside. timm's ``resolve_data_config`` + ``create_transform`` then only scale to
[0, 1]; the dataset statistics the model applies are its constructor's ``mean``/``std``."""


def default_stats(in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """CIFAR-10's mean/std for RGB, a neutral (0.5, 0.25) otherwise; trainers pass the dataset's own."""
    return (CIFAR10_MEAN, CIFAR10_STD) if in_chans == 3 else ((0.5,), (0.25,))


class Normalize(nn.Module):
    """(x - mean) / std inside the model, so it takes [0, 1] inputs as RobustBench and AutoAttack expect.

    The statistics are non-persistent buffers: they come from the model config, not the checkpoint.
    A single-value mean/std is broadcast to any number of input channels.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None, in_chans: int) -> None:
        super().__init__()
        default_mean, default_std = default_stats(in_chans)
        mean, std = tuple(mean or default_mean), tuple(std or default_std)
        if len(mean) != len(std) or len(mean) not in (1, in_chans):
            raise RandmixError(f"mean/std have {len(mean)}/{len(std)} values for {in_chans} input channels")
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class StagedNet(nn.Module):
    """timm's feature API for a model that runs ``normalize -> stem -> <stages_name>`` (an ``nn.Sequential``).

    Subclasses register ``normalize``, ``stem`` and their Sequential in that order (timm's ``features_only``
    wrapper replays the children in registration order) and fill ``feature_info`` with one entry for the
    stem's output and one per stage. The Sequential keeps its own name (``blocks`` or ``stages``) so that
    state-dict keys, and the checkpoints that store them, stay as they were.
    """

    stages_name: ClassVar[str]
    feature_info: list[dict[str, Any]]

    def __init__(self) -> None:
        super().__init__()
        self.grad_checkpointing = False

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """timm 1.0.9's ``forward_intermediates``: the feature maps ``indices`` selects (last n if an int, all if
        None) and the final feature map. ``norm`` changes nothing: there is no final norm outside the stages."""
        if output_fmt != "NCHW":
            raise RandmixError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        stages: nn.Sequential = getattr(self, self.stages_name)
        if stop_early:
            stages = stages[:max_index]
        x = self.stem(self.normalize(x))  # type: ignore[operator]  # TorchScript refuses an nn.Module class annotation
        intermediates = [x] if 0 in take_indices else []
        for i, stage in enumerate(stages, start=1):
            x = stage(x)
            if i in take_indices:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)


class StagedClassifier(StagedNet):
    """A :class:`StagedNet` with timm's classifier API: global pool, dropout and a Linear ``head``.

    ``reset_classifier`` replaces only the pool and the head, which are always learned, so frozen mixers
    stay frozen at the values they had.
    """

    def _init_head(self, num_features: int, num_classes: int, global_pool: str, drop_rate: float) -> None:
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = num_features
        self.head_drop = nn.Dropout(drop_rate)
        self.pool, self.head = create_classifier(num_features, num_classes, pool_type=global_pool)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh head for ``num_classes`` (0: return pooled features); ``global_pool=''`` also drops pooling."""
        self.num_classes = num_classes
        pool_type = self.pool.pool_type if global_pool is None else global_pool
        self.pool, self.head = create_classifier(self.num_features, num_classes, pool_type=pool_type)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last feature ``indices`` takes (and, with ``prune_head``, the pool and
        classifier); returns the indices. ``prune_norm`` changes nothing: there is no final norm to drop."""
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        setattr(self, self.stages_name, getattr(self, self.stages_name)[:max_index])
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.pool(x))
        return x if pre_logits else self.head(x)


def cfg_32px(**kwargs: Any) -> dict[str, Any]:
    """timm default config for a randmix model trained from scratch on 32x32 images (no weights).

    ``mean``/``std`` are :data:`INPUT_MEAN`/:data:`INPUT_STD` because normalization happens inside the model;
    ``pool_size`` is the final feature map's size at ``input_size``.
    """
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": INPUT_MEAN,
        "std": INPUT_STD,
        "first_conv": "stem.0",
        "classifier": "head",
        "license": "mit",
        **kwargs,
    }


def dataset_tag(dataset: str) -> str:
    """timm's pretrained tag for a dataset name: ``fashion-mnist`` -> ``fashion_mnist``."""
    return dataset.replace("-", "_")


def with_dataset_tags(cfgs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each ``<model>.untrained`` config, plus one ``<model>.<dataset tag>`` config per named dataset.

    A dataset tag says what a checkpoint trained on that dataset takes: ``input_size`` (channels, side, side),
    ``num_classes``; its ``mean``/``std`` stay 0/1 because the model normalizes inside, with the dataset's
    statistics, which :func:`build` sets from the tag. So ``timm.create_model("randmix_convmixer_small.fashion_mnist",
    checkpoint_path=...)`` and ``timm.data.resolve_data_config({}, model=model)`` evaluate a published checkpoint
    as it was trained. The untrained config stays each model's default (the first)."""
    from randmix_bench.data import DATASETS

    tagged = dict(cfgs)
    for key, cfg in cfgs.items():
        model = key.split(".")[0]
        for info in DATASETS.values():
            if info.name == "synthetic":
                continue
            c = info.in_chans
            tagged[f"{model}.{dataset_tag(info.name)}"] = {
                **cfg, "input_size": (c, info.image_size, info.image_size), "pool_size": None,
                "num_classes": cfg["num_classes"] if cfg["num_classes"] < 0 else info.num_classes,
                "mean": INPUT_MEAN[:1] * c, "std": INPUT_STD[:1] * c}
    return tagged


def build(cls: type[nn.Module], variant: str, pretrained: bool, feature_cfg: dict[str, Any], **kwargs: Any) -> Any:
    """timm's ``build_model_with_cfg``; a dataset tag (``pretrained_cfg="fashion_mnist"``, from a name like
    ``randmix_convmixer_small.fashion_mnist``) also sets the in-model ``mean``/``std`` to that dataset's, unless
    given."""
    from timm.models import build_model_with_cfg

    from randmix_bench.data import DATASETS

    tag = kwargs.get("pretrained_cfg")
    info = next((i for i in DATASETS.values() if isinstance(tag, str) and dataset_tag(i.name) == tag), None)
    if info is not None and info.name != "synthetic":
        kwargs.setdefault("mean", info.mean)
        kwargs.setdefault("std", info.std)
    return build_model_with_cfg(cls, variant, pretrained, feature_cfg=feature_cfg, **kwargs)
