"""Pixel-shuffle decoding (arXiv 2503.16760, claim 3): undo one fixed random permutation of pixel positions.

One permutation of the H*W positions, drawn from ``ShuffleSettings.permutation_seed``, scrambles every image
(all channels alike); an image-to-image network (``randmix_unshuffler_*``) is trained through the ordinary
trainer with a :class:`ShuffleTask` to map the scrambled image back to the original. The permutation is
also stored in the task record (``run.json`` and the checkpoint), so a run is evaluated with exactly the
permutation it was trained on. Scores are PSNR and SSIM (``metrics.py``), next to two baselines: the
scrambled input itself (``identity``) and the test set's per-pixel mean image (the best output of a network
that ignores its input's content under MSE; beating it means the network actually reads the scrambled pixels).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from randmix_bench.data import DatasetInfo, ImageSplit, dataset_info, is_folder_dataset, load_split
from randmix_bench.errors import RandmixError, check_seed
from randmix_bench.tasks.base import TaskSettings
from randmix_bench.tasks.metrics import psnr, ssim
from randmix_bench.tensors import eval_mode, to_unit
from randmix_bench.vocab import Loss, TaskKind

if TYPE_CHECKING:
    from randmix_bench.recipes import TrainConfig

__all__ = ["ShuffleSettings", "ShuffleTask", "make_permutation", "invert_permutation", "scramble", "unscramble"]


def make_permutation(seed: int, num_pixels: int) -> torch.Tensor:
    """The permutation of ``num_pixels`` positions named by ``seed`` (int64, CPU).

    Positions ``i`` are sorted by the first 8 bytes of ``sha256(f"randmix-shuffle:{seed}:{i}")``: a seeded
    shuffle that depends on no library's RNG, so a seed names the same permutation on every machine and
    version (the run still stores the permutation itself)."""
    keys = [hashlib.sha256(f"randmix-shuffle:{seed}:{i}".encode()).digest()[:8] for i in range(num_pixels)]
    order = np.argsort(np.frombuffer(b"".join(keys), dtype=">u8"), kind="stable")
    return torch.from_numpy(order.astype(np.int64))


def invert_permutation(perm: torch.Tensor) -> torch.Tensor:
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm), device=perm.device)
    return inverse


def scramble(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Output pixel ``i`` of every image and channel is input pixel ``perm[i]`` (row-major positions)."""
    h, w = images.shape[-2:]
    if perm.numel() != h * w:
        raise RandmixError(f"permutation of {perm.numel()} positions does not fit {h}x{w} images")
    return images.flatten(-2)[..., perm.to(images.device)].unflatten(-1, (h, w))


def unscramble(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`scramble`: the oracle reconstruction."""
    return scramble(images, invert_permutation(perm))


@dataclass(frozen=True)
class ShuffleSettings(TaskSettings):
    """What a pixel-shuffle run adds to the shared training settings."""

    kind: ClassVar[TaskKind] = TaskKind.SHUFFLE
    loss: Loss = Loss.MSE  # the reconstruction loss
    permutation_seed: int = 0  # names the pixel permutation (make_permutation)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ShuffleSettings:
        return cls(**{**values, **({"loss": Loss.parse(values["loss"])} if "loss" in values else {})})

    def validate(self) -> ShuffleSettings:
        super().validate()
        check_seed("permutation_seed", self.permutation_seed)
        return self


class ShuffleTask:
    """Reconstruct images from their pixel-shuffled versions; the trainer's hooks for this track."""

    name = "shuffle"
    settings_type: ClassVar[type[TaskSettings]] = ShuffleSettings

    def __init__(self, image_size: tuple[int, int], permutation_seed: int = 0, loss: str = "mse") -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.permutation_seed = permutation_seed
        self.loss = Loss.parse(loss)
        self.permutation = make_permutation(permutation_seed, self.image_size[0] * self.image_size[1])
        self._on_device: dict[torch.device, torch.Tensor] = {}  # copies, so a CUDA step never waits on a copy

    @classmethod
    def for_config(cls, cfg: TrainConfig) -> ShuffleTask:
        """The task ``cfg`` trains, its permutation sized from the dataset (a folder dataset's test split is
        read to learn its image size)."""
        if is_folder_dataset(cfg.dataset):
            h, w = load_split(cfg.dataset, False, cfg.data_dir).images.shape[-2:]
        else:
            h = w = dataset_info(cfg.dataset).image_size
        settings = cfg.settings_of(ShuffleSettings)
        return cls((h, w), settings.permutation_seed, settings.loss)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ShuffleTask:
        """Rebuild the task a run recorded (its :meth:`config`), checking its stored permutation is the one its
        seed names; no data is read."""
        if record.get("task") != cls.name:
            raise RandmixError(f"not a pixel-shuffle run (task {record.get('task')!r}); "
                               "train one with `randmix shuffle train`")
        try:  # the record is a checkpoint's metadata: untrusted, so its shape is checked before any work
            h, w = (int(v) for v in record["image_size"])
            stored = list(record["permutation"])
            if not (h > 0 and w > 0 and len(stored) == h * w):
                raise ValueError(f"{len(stored)} stored positions for {h}x{w} images")
            task = cls((h, w), record["permutation_seed"], record["loss"])
        except RandmixError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise RandmixError(f"the run's task record is damaged ({type(e).__name__}: {e}); the record was altered: "
                               "use a checkpoint from randmix shuffle train") from None
        if task.permutation.tolist() != stored:
            raise RandmixError(f"the stored permutation is not the one seed {record['permutation_seed']} names; "
                               "the record was altered")
        return task

    def model_kwargs(self, info: DatasetInfo) -> dict[str, Any]:
        if (info.image_size, info.image_size) != self.image_size:
            raise RandmixError(f"the permutation is for {self.image_size} images, "
                               f"{info.name} has {info.image_size}x{info.image_size}")
        return {"in_chans": info.in_chans, "mean": info.mean, "std": info.std}

    def scramble(self, images: torch.Tensor) -> torch.Tensor:
        if images.device not in self._on_device:
            self._on_device[images.device] = self.permutation.to(images.device)
        return scramble(images, self._on_device[images.device])

    def batch_loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = model(self.scramble(images)).float()
        return F.mse_loss(out, images) if self.loss is Loss.MSE else F.l1_loss(out, images)

    def _reconstruct(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return model(self.scramble(x)).float().clamp_(0, 1)

    @torch.no_grad()
    def reconstruct(self, model: nn.Module, images: torch.Tensor, batch_size: int,
                    device: torch.device | str) -> torch.Tensor:
        """Reconstructions in [0, 1] (float32, CPU) of uint8 ``images``, in eval mode and float32."""
        with eval_mode(model):
            out = [self._reconstruct(model, to_unit(images[i : i + batch_size].to(device))).cpu()
                   for i in range(0, len(images), batch_size)]
        return torch.cat(out)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: ImageSplit, batch_size: int, device: torch.device) -> dict[str, float]:
        """Mean PSNR/SSIM of the reconstructions, of the scrambled input, and of the split's mean image."""
        mean_image = split.images.float().mean(0).div_(255).to(device)  # the mean in pixel units, then scaled
        metrics = ("psnr", "ssim", "identity_psnr", "identity_ssim", "mean_image_psnr", "mean_image_ssim")
        sums = dict.fromkeys(metrics, 0.0)
        with eval_mode(model):
            for i in range(0, len(split), batch_size):
                x = to_unit(split.images[i : i + batch_size].to(device))
                outputs = {"": self._reconstruct(model, x), "identity_": self.scramble(x),
                           "mean_image_": mean_image.expand_as(x)}
                for prefix, y in outputs.items():
                    sums[prefix + "psnr"] += psnr(y, x).sum().item()
                    sums[prefix + "ssim"] += ssim(y, x).sum().item()
        return {k: v / max(len(split), 1) for k, v in sums.items()}

    def config(self) -> dict[str, Any]:
        return {"task": self.name, "loss": str(self.loss), "permutation_seed": self.permutation_seed,
                "image_size": list(self.image_size), "permutation": self.permutation.tolist()}
