"""Device-resident training batches: the whole uint8 dataset lives on the device, batches are drawn and
augmented there, and no DataLoader worker sits in the hot path.

CIFAR-10 is 150 MB of uint8, so it fits any GPU; per-sample CPU transforms would starve it. Every random
choice of an epoch (order, crops, flips, RandAugment ops) comes from one generator seeded by
``(seed, epoch)``, so an epoch's batches are a pure function of those two numbers: resume needs no loader
state, and DDP ranks draw the same global batch and each keep their own contiguous slice of it.

Augmentations, all batched on the device:

- random crop after zero padding (torchvision's ``RandomCrop(size, padding)``) and horizontal flip, as one
  gather from a pre-padded copy of the dataset;
- RandAugment(n, m) with torchvision's 14 ops and magnitude bins (``num_magnitude_bins=31``), each image
  drawing its own op and sign per layer. Geometric ops are one nearest-neighbour ``grid_sample`` per layer
  with zero fill, colour ops run on the whole batch and are selected per image with ``torch.where``. Ops
  act on floats in [0, 1] rather than on uint8 images, so results are not bit-identical to torchvision's
  (no intermediate rounding); the op set, magnitudes and probabilities are the same. Computing every op
  for every image avoids host syncs, which matters on a GPU; on a CPU it is the slow part of a step.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from randmix_bench.errors import RandmixError
from randmix_bench.tensors import to_unit

__all__ = ["Augment", "DeviceLoader", "RA_OPS", "epoch_seed", "rand_augment"]

RA_OPS = (
    "identity", "shear_x", "shear_y", "translate_x", "translate_y", "rotate",
    "brightness", "color", "contrast", "sharpness", "posterize", "solarize", "autocontrast", "equalize",
)  # torchvision.transforms.RandAugment's op space, in its order
_OP = {name: i for i, name in enumerate(RA_OPS)}
_GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


@dataclass(frozen=True)
class Augment:
    """Training augmentation of a recipe; all off by default."""

    crop_padding: int = 0
    flip: bool = False
    randaugment_n: int = 0
    randaugment_m: int = 0  # 0..30


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed for one epoch, independent of any library's seeding scheme."""
    return int.from_bytes(hashlib.sha256(f"randmix-loader:{seed}:{epoch}".encode()).digest()[:8], "big") >> 1


class DeviceLoader:
    """Shuffled, augmented batches of a uint8 dataset held on ``device``.

    ``batch_size`` is the global batch: with ``world_size`` ranks each yields ``batch_size // world_size``
    images, its slice of the global batch. Epochs drop the last partial batch, so every step (and every
    compiled graph) sees one shape. Batches are float32 in [0, 1], channels-last if asked.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        augment: Augment,
        seed: int,
        device: torch.device | str,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise RandmixError(f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if batch_size % world_size:
            raise RandmixError(f"batch size {batch_size} does not split evenly over {world_size} processes")
        if batch_size > len(images):
            raise RandmixError(f"batch size {batch_size} is larger than the training set ({len(images)} images)")
        side = min(images.shape[2:])
        if augment.crop_padding >= side:  # crops of nothing but padding; a huge padding fills the memory
            size = "x".join(map(str, images.shape[2:]))
            raise RandmixError(f"crop padding {augment.crop_padding} is not less than the images' {size} pixels; "
                               f"pass --crop-padding from 0 to {side - 1}")
        self.device = torch.device(device)
        self.augment = augment
        self.seed = seed
        self.batch_size = batch_size
        self.local_batch = batch_size // world_size
        self.rank = rank
        self.channels_last = channels_last
        self.image_size = tuple(images.shape[2:])
        self.num_images = len(images)
        p = augment.crop_padding
        self.images = F.pad(images.to(self.device), (p, p, p, p)) if p else images.to(self.device)
        self.labels = labels.to(self.device)
        self._rand_augment: Callable[..., torch.Tensor] = (
            torch.compile(rand_augment, dynamic=False) if compile and augment.randaugment_n else rand_augment
        )

    def __len__(self) -> int:
        """Steps per epoch."""
        return self.num_images // self.batch_size

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's (images, labels) batches of epoch ``epoch``; the same every time it is asked."""
        g = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, epoch))
        order = torch.randperm(self.num_images, generator=g, device=self.device)
        lo, hi = self.rank * self.local_batch, (self.rank + 1) * self.local_batch
        for step in range(len(self)):
            params = self._draw(g)  # for the whole global batch, so every rank consumes the same randomness
            idx = order[step * self.batch_size :][lo:hi]
            x = self._crop_flip(idx, *(None if p is None else p[..., lo:hi] for p in params[:2]))
            if params[2] is not None and params[3] is not None:
                ops, signs = params[2][..., lo:hi], params[3][..., lo:hi]
                x = self._rand_augment(x, ops, signs, self.augment.randaugment_m)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]

    def _draw(self, g: torch.Generator) -> tuple[torch.Tensor | None, ...]:
        """Random parameters of one global batch, drawn in a fixed order: crop offsets [2, B], flips [B],
        RandAugment ops and signs [n, B]."""
        a, b, dev = self.augment, self.batch_size, self.device
        offsets = torch.randint(0, 2 * a.crop_padding + 1, (2, b), generator=g, device=dev) if a.crop_padding else None
        flips = torch.randint(0, 2, (b,), generator=g, device=dev).bool() if a.flip else None
        ops = signs = None
        if a.randaugment_n:
            ops = torch.randint(0, len(RA_OPS), (a.randaugment_n, b), generator=g, device=dev)
            signs = torch.randint(0, 2, (a.randaugment_n, b), generator=g, device=dev).float() * 2 - 1
        return offsets, flips, ops, signs

    def _crop_flip(self, idx: torch.Tensor, offsets: torch.Tensor | None, flips: torch.Tensor | None) -> torch.Tensor:
        """Gather the batch from the (padded) dataset, cropping and flipping in the same indexing op."""
        if offsets is None and flips is None:
            return to_unit(self.images[idx])
        h, w = self.image_size
        rows = torch.arange(h, device=self.device).expand(len(idx), h)
        cols = torch.arange(w, device=self.device).expand(len(idx), w)
        if offsets is not None:
            rows, cols = rows + offsets[0, :, None], cols + offsets[1, :, None]
        if flips is not None:
            cols = torch.where(flips[:, None], cols.flip(1), cols)
        channels = torch.arange(self.images.shape[1], device=self.device)
        x = self.images[
            idx[:, None, None, None], channels[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
        ]
        return to_unit(x)


# ------------------------------------------------------------------------------------------ RandAugment


def rand_augment(x: torch.Tensor, ops: torch.Tensor, signs: torch.Tensor, magnitude: int) -> torch.Tensor:
    """Apply ``len(ops)`` RandAugment layers to float images ``x`` [B, C, H, W] in [0, 1].

    ``ops[l, i]`` indexes :data:`RA_OPS` for image ``i`` in layer ``l``; ``signs`` (+-1) flip signed ops.
    """
    for op, sign in zip(ops, signs, strict=True):
        x = _ra_layer(x, op, sign, magnitude / 30)
    return x


def _ra_layer(x: torch.Tensor, op: torch.Tensor, sign: torch.Tensor, frac: float) -> torch.Tensor:
    b = len(x)

    def where(name: str, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        return torch.where((op == _OP[name]).view(b, 1, 1, 1), new, old)

    x = _ra_affine(x, op, sign, frac)  # identity resampling for images whose op is not geometric
    factor = (1 + sign * 0.9 * frac).view(b, 1, 1, 1)  # torchvision: linspace(0, 0.9, 31), signed
    x = where("brightness", _blend(x, torch.zeros_like(x), factor), x)
    if x.shape[1] == 3:  # torchvision leaves 1-channel images unchanged by "color"
        x = where("color", _blend(x, _grayscale(x), factor), x)
    x = where("contrast", _blend(x, _grayscale(x).mean((1, 2, 3), keepdim=True), factor), x)
    x = where("sharpness", _blend(x, _smoothed(x), factor), x)
    shift = 2 ** round(frac * 30 / 7.5)  # posterize keeps 8 - round(m / 7.5) bits
    x = where("posterize", torch.floor((x * 255).round() / shift) * shift / 255, x)
    x = where("solarize", torch.where(x >= 1 - frac, 1 - x, x), x)  # threshold linspace(255, 0, 31)[m] / 255
    x = where("autocontrast", _autocontrast(x), x)
    return where("equalize", _equalize(x), x)


def _ra_affine(x: torch.Tensor, op: torch.Tensor, sign: torch.Tensor, frac: float) -> torch.Tensor:
    """Shear (about the top-left corner), translate (whole pixels) or rotate (about the centre) each
    image by its own signed magnitude, as torchvision's RandAugment does; nearest neighbour, zero fill."""
    _, _, h, w = x.shape
    zero = torch.zeros_like(sign)
    shear = sign * 0.3 * frac
    sx = torch.where(op == _OP["shear_x"], shear, zero) * (h / w)  # in normalized grid units
    sy = torch.where(op == _OP["shear_y"], shear, zero) * (w / h)
    tx = torch.where(op == _OP["translate_x"], sign * int(150 / 331 * w * frac) * 2 / w, zero)
    ty = torch.where(op == _OP["translate_y"], sign * int(150 / 331 * h * frac) * 2 / h, zero)
    angle = torch.where(op == _OP["rotate"], sign * math.radians(30 * frac), zero)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [torch.stack([cos, sx - sin * h / w, sx - tx], 1), torch.stack([sy + sin * w / h, cos, sy - ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor * a + (1 - factor) * b).clamp(0, 1)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b).unsqueeze(1)


def _smoothed(x: torch.Tensor) -> torch.Tensor:
    """torchvision's sharpness "degenerate": a 3x3 smoothing (centre weight 5/13), borders unchanged."""
    c = x.shape[1]
    kernel = torch.ones(3, 3, dtype=x.dtype, device=x.device)
    kernel[1, 1] = 5
    kernel = (kernel / kernel.sum()).expand(c, 1, 3, 3)
    inner = F.conv2d(x, kernel, groups=c)
    return torch.cat([x[..., :1, :], torch.cat([x[..., 1:-1, :1], inner, x[..., 1:-1, -1:]], 3), x[..., -1:, :]], 2)


def _autocontrast(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin((2, 3), keepdim=True)
    hi = x.amax((2, 3), keepdim=True)
    flat = hi <= lo
    scale = torch.where(flat, torch.ones_like(hi), 1 / (hi - lo).clamp_min(1e-12))
    return ((x - torch.where(flat, torch.zeros_like(lo), lo)) * scale).clamp(0, 1)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """Per-image, per-channel histogram equalization with torchvision's lookup table, batched."""
    b, c, h, w = x.shape
    v = (x * 255).round().long().flatten(2)  # [B, C, HW] in 0..255
    hist = torch.zeros(b, c, 256, dtype=torch.float32, device=x.device)
    hist = hist.scatter_add_(2, v, torch.ones_like(v, dtype=torch.float32))
    top_count = hist.gather(2, v.amax(2, keepdim=True))  # pixels at the highest value present
    step = torch.div(h * w - top_count, 255, rounding_mode="floor")
    half_step = torch.div(step, 2, rounding_mode="floor")
    lut = torch.div(hist.cumsum(2) + half_step, step.clamp_min(1), rounding_mode="floor")
    lut = F.pad(lut, (1, 0))[..., :-1].clamp(0, 255)
    out = torch.where(step == 0, v.float(), lut.gather(2, v))
    return (out / 255).view(b, c, h, w).to(x.dtype)
