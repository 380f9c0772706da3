"""Pixel-shuffle decoding (arXiv 2503.16760, claim 3): undo one fixed random permutation of pixel positions.

One permutation of the H*W positions, drawn from a seed, scrambles every image (all channels alike); an
image-to-image network (``randmix_unshuffler_*``) is trained through the ordinary trainer with a
:class:`ShuffleTask` to map the scrambled image back to the original. The permutation is stored in the
task config (``run.json`` and the checkpoint), so a run is evaluated with exactly the permutation it was
trained on. Scores are PSNR and SSIM, next to two baselines: the scrambled input itself (``identity``)
and the test set's per-pixel mean image (the best output of a network that ignores its input's content
under MSE; beating it means the network actually reads the scrambled pixels).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from randmix_bench.checkpoint import load_model, resolve
from randmix_bench.data import DatasetInfo, ImageSplit, check_dataset_name, dataset_info, is_folder_dataset, load_split
from randmix_bench.device import resolve_device
from randmix_bench.errors import ExistsError, RandmixError
from randmix_bench.files import atomic_path, check_writable, sha256
from randmix_bench.mixing import count_parameters
from randmix_bench.models import model_task
from randmix_bench.provenance import collect
from randmix_bench.recipes import TrainConfig
from randmix_bench.results import CheckpointRef, ShuffleResult, check_entry_name, write_result
from randmix_bench.tensors import eval_mode, to_unit

__all__ = [
    "LOSSES",
    "PSNR_MAX_DB",
    "SHUFFLE_RECIPES",
    "ShuffleTask",
    "make_permutation",
    "invert_permutation",
    "scramble",
    "unscramble",
    "psnr",
    "ssim",
    "save_grid",
    "grid_size",
    "get_shuffle_recipe",
    "task_for_config",
    "evaluate_runs",
]

LOSSES = ("mse", "l1")
PSNR_MAX_DB = 100.0
"""PSNR of an exact reconstruction: the MSE is clamped at 1e-10, so the mean over images stays finite."""

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


# ---------------------------------------------------------------------------------------- permutation


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


# -------------------------------------------------------------------------------------------- metrics


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB (float64) of [N, C, H, W] images, capped at :data:`PSNR_MAX_DB` for exact matches."""
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1).clamp_min(1e-10 * data_range**2)
    return 10 * torch.log10(data_range**2 / mse)


def _gaussian_blur_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of each channel, 'valid' region only (no padding assumptions)."""
    c, k = x.shape[1], len(window)
    x = F.conv2d(x, window.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, window.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM of [N, C, H, W] images (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5,
    K1 0.01, K2 0.03, population statistics, averaged over the valid window positions and channels
    (what skimage's ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)`` computes).
    Computed in float64: in float32, E[x^2] - E[x]^2 cancels badly and moves SSIM by ~1e-4."""
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise RandmixError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {tuple(x.shape[-2:])}")
    x, y = x.double(), y.double()
    r = torch.arange(SSIM_WINDOW, device=x.device, dtype=torch.float64) - SSIM_WINDOW // 2
    window = torch.exp(-(r**2) / (2 * SSIM_SIGMA**2))
    window = window / window.sum()
    mu_x, mu_y = _gaussian_blur_valid(x, window), _gaussian_blur_valid(y, window)
    var_x = _gaussian_blur_valid(x * x, window) - mu_x**2
    var_y = _gaussian_blur_valid(y * y, window) - mu_y**2
    cov = _gaussian_blur_valid(x * y, window) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).flatten(1).mean(1)


# ----------------------------------------------------------------------------------------------- task


class ShuffleTask:
    """Reconstruct images from their pixel-shuffled versions; the trainer's hooks for this track."""

    name = "shuffle"

    def __init__(self, image_size: tuple[int, int], permutation_seed: int = 0, loss: str = "mse") -> None:
        if loss not in LOSSES:
            raise RandmixError(f"unknown loss {loss!r}; valid choices: {', '.join(LOSSES)}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.permutation_seed = permutation_seed
        self.loss = loss
        self.permutation = make_permutation(permutation_seed, self.image_size[0] * self.image_size[1])
        self._on_device: dict[torch.device, torch.Tensor] = {}  # copies, so a CUDA step never waits on a copy

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ShuffleTask":
        """Rebuild the task a run recorded, checking its stored permutation is the one its seed names."""
        if config.get("task") != cls.name:
            raise RandmixError(f"not a pixel-shuffle run (task {config.get('task')!r}); train one with `randmix shuffle train`")
        task = cls(tuple(config["image_size"]), config["permutation_seed"], config["loss"])
        if task.permutation.tolist() != list(config["permutation"]):
            raise RandmixError(f"the stored permutation is not the one seed {config['permutation_seed']} names; the record was altered")
        return task

    def model_kwargs(self, info: DatasetInfo) -> dict[str, Any]:
        if (info.image_size, info.image_size) != self.image_size:
            raise RandmixError(f"the permutation is for {self.image_size} images, {info.name} has {info.image_size}x{info.image_size}")
        return {"in_chans": info.in_chans, "mean": info.mean, "std": info.std}

    def scramble(self, images: torch.Tensor) -> torch.Tensor:
        if images.device not in self._on_device:
            self._on_device[images.device] = self.permutation.to(images.device)
        return scramble(images, self._on_device[images.device])

    def batch_loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = model(self.scramble(images)).float()
        return F.mse_loss(out, images) if self.loss == "mse" else F.l1_loss(out, images)

    def _reconstruct(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return model(self.scramble(x)).float().clamp_(0, 1)

    @torch.no_grad()
    def reconstruct(self, model: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device | str) -> torch.Tensor:
        """Reconstructions in [0, 1] (float32, CPU) of uint8 ``images``, in eval mode and float32."""
        with eval_mode(model):
            out = [self._reconstruct(model, to_unit(images[i : i + batch_size].to(device))).cpu()
                   for i in range(0, len(images), batch_size)]
        return torch.cat(out)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: ImageSplit, batch_size: int, device: torch.device) -> dict[str, float]:
        """Mean PSNR/SSIM of the reconstructions, of the scrambled input, and of the split's mean image."""
        mean_image = split.images.float().mean(0).div_(255).to(device)  # the mean in pixel units, then scaled
        sums = dict.fromkeys(("psnr", "ssim", "identity_psnr", "identity_ssim", "mean_image_psnr", "mean_image_ssim"), 0.0)
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
        return {"task": self.name, "loss": self.loss, "permutation_seed": self.permutation_seed,
                "image_size": list(self.image_size), "permutation": self.permutation.tolist()}


def task_for_config(cfg: TrainConfig, permutation_seed: int = 0, loss: str = "mse") -> ShuffleTask:
    """The :class:`ShuffleTask` for a training config: checks the model is an unshuffler and sizes the
    permutation from the dataset (a folder dataset's test split is read to learn its image size)."""
    if model_task(cfg.model) != "shuffle":
        raise RandmixError(f"{cfg.model} is a classifier; pixel-shuffle runs need an image-to-image model (randmix_unshuffler_*)")
    check_dataset_name(cfg.dataset)
    if is_folder_dataset(cfg.dataset):
        h, w = load_split(cfg.dataset, False, cfg.data_dir).images.shape[-2:]
    else:
        h = w = dataset_info(cfg.dataset).image_size
    return ShuffleTask((h, w), permutation_seed, loss)


# -------------------------------------------------------------------------------------------- recipes

_WARMUP_LINEAR_DECAY = ((0.0, 0.0), (0.1, 1.0), (1.0, 0.0))

SHUFFLE_RECIPES: dict[str, TrainConfig] = {
    # Seconds on a CPU: the tiny unshuffler on synthetic data, for smoke runs and tests.
    "unshuffle-quick": TrainConfig(
        recipe="unshuffle-quick", model="randmix_unshuffler_tiny", dataset="synthetic",
        epochs=2, batch_size=128, lr=0.01, weight_decay=0.0, lr_schedule=_WARMUP_LINEAR_DECAY, grad_clip=1.0,
        flip=False, eval_batch_size=256,
    ),
    # Minutes on a 2-core CPU (the README's measurement): one epoch of Fashion-MNIST on a small
    # unshuffler whose receptive field (radius 7 * 4 = 28) spans a 28x28 image.
    "unshuffle-fashion-mnist-cpu": TrainConfig(
        recipe="unshuffle-fashion-mnist-cpu", model="randmix_unshuffler_16_7", dataset="fashion-mnist",
        epochs=1, batch_size=64, lr=0.005, weight_decay=0.0, lr_schedule=_WARMUP_LINEAR_DECAY, grad_clip=1.0,
        flip=True, eval_batch_size=500,
    ),
    # The small tier (randmix reproduce --tier small): the same run with the half-cost width-8 unshuffler.
    "unshuffle-fashion-mnist-small": TrainConfig(
        recipe="unshuffle-fashion-mnist-small", model="randmix_unshuffler_8_7", dataset="fashion-mnist",
        epochs=1, batch_size=64, lr=0.005, weight_decay=0.0, lr_schedule=_WARMUP_LINEAR_DECAY, grad_clip=1.0,
        flip=True, eval_batch_size=500,
    ),
    # The paper's large network (width 512, depth 16, kernel 7) on the MNIST family and CIFAR-10 (GPU). The paper
    # gives no training hyperparameters; these are the CPU recipe's, scaled up, and not yet run on a GPU here.
    **{
        f"unshuffle-{dataset}": TrainConfig(
            recipe=f"unshuffle-{dataset}", model="randmix_unshuffler_512_16", dataset=dataset,
            epochs=20, batch_size=128, lr=0.002, weight_decay=0.0, lr_schedule=_WARMUP_LINEAR_DECAY, grad_clip=1.0,
            flip=True, eval_batch_size=500,
        )
        for dataset in ("mnist", "fashion-mnist", "cifar10", "cifar10-jpeg")
    },
}


def get_shuffle_recipe(name: str) -> TrainConfig:
    if name not in SHUFFLE_RECIPES:
        raise RandmixError(f"unknown shuffle recipe {name!r}; valid choices: {', '.join(SHUFFLE_RECIPES)}")
    return SHUFFLE_RECIPES[name]


# ----------------------------------------------------------------------------------------------- grid

GRID_PAD = 2
GRID_LABEL_HEIGHT = 14


def grid_size(n_images: int, n_rows: int, image_hw: tuple[int, int], scale: int) -> tuple[int, int]:
    """(width, height) in pixels of :func:`save_grid`'s picture: each row is a label band over
    ``n_images`` cells of ``scale`` x the image size, everything separated by :data:`GRID_PAD` pixels."""
    h, w = image_hw
    return GRID_PAD + n_images * (scale * w + GRID_PAD), GRID_PAD + n_rows * (GRID_LABEL_HEIGHT + scale * h + GRID_PAD)


def save_grid(path: str | Path, rows: Sequence[tuple[str, torch.Tensor]], scale: int = 3) -> Path:
    """Write a labelled PNG with one row of images per ``(label, images [n, C, H, W] in [0, 1])``, the
    layout of the paper's figures (ground truth / scrambled / reconstructions), atomically."""
    from PIL import Image, ImageDraw

    if not rows:
        raise RandmixError("a grid needs at least one row")
    n, _, h, w = rows[0][1].shape
    if any(images.shape != rows[0][1].shape for _, images in rows):
        raise RandmixError("every grid row needs images of the same count and shape")
    width, height = grid_size(n, len(rows), (h, w), scale)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        top = GRID_PAD + r * (GRID_LABEL_HEIGHT + scale * h + GRID_PAD)
        draw.text((GRID_PAD, top), label, fill="black")
        pixels = images.clamp(0, 1).mul(255).round().to(torch.uint8).expand(-1, 3, -1, -1)
        pixels = pixels.repeat_interleave(scale, 2).repeat_interleave(scale, 3).permute(0, 2, 3, 1).numpy()
        for i, cell in enumerate(pixels):
            canvas.paste(Image.fromarray(cell), (GRID_PAD + i * (scale * w + GRID_PAD), top + GRID_LABEL_HEIGHT))
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


# ----------------------------------------------------------------------------------------------- eval


@dataclass
class _Run:
    """A run folder's checkpoint, rebuilt: the model, the task and training config it recorded."""

    name: str
    checkpoint: Path
    model: nn.Module
    meta: dict[str, Any]
    task: ShuffleTask
    cfg: TrainConfig


def evaluate_runs(
    runs: Sequence[str | Path],
    out_dir: str | Path,
    n_examples: int | None = None,
    grid_images: int = 8,
    batch_size: int = 500,
    device: str | None = None,
    data_dir: str | Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    grid_name: str = "grid.png",
) -> list[ShuffleResult]:
    """Score each run folder (a variant) on the first ``n_examples`` test images and draw one grid.

    Writes ``<out_dir>/<run folder name>.json`` (a :class:`ShuffleResult`) per run and
    ``<out_dir>/<grid_name>`` (ground truth, scrambled, then one reconstruction row per run). Every run must
    share the dataset and permutation; nothing is overwritten without ``force``. ``device`` defaults to
    CUDA when available.
    """
    out_dir = Path(out_dir)
    runs = [Path(r) for r in runs]
    # a run folder, or a published checkpoint file (named by its stem)
    names = [check_entry_name(r.stem if r.is_file() else r.resolve().name, "run folder name") for r in runs]
    if not runs:
        raise RandmixError("give at least one run folder")
    if (n_examples is not None and n_examples < 1) or grid_images < 1:
        raise RandmixError(f"n_examples and grid_images must be >= 1, got {n_examples} and {grid_images}")
    if len(set(names)) != len(names):
        raise RandmixError(f"run folders need distinct names (their results are <name>.json): {', '.join(names)}")
    check_writable(out_dir, "--out-dir")
    if out_dir.resolve() in {r.resolve() for r in runs}:
        raise RandmixError(f"--out-dir {out_dir} is one of the run folders being scored; results go in their own folder, "
                           "e.g. leaderboards/<dataset>/shuffle")
    outputs = [out_dir / f"{name}.json" for name in names] + [out_dir / grid_name]
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not force:
        raise ExistsError(f"{', '.join(existing)} already exist; pass --force to overwrite")
    checkpoints = [resolve(r) for r in runs]  # fail on a missing checkpoint before any work
    refs = [CheckpointRef.for_result(c, out, sha256(c)) for c, out in zip(checkpoints, outputs)]
    dev = resolve_device(device)

    loaded = []
    for name, ckpt in zip(names, checkpoints):
        model, meta = load_model(ckpt, map_location=dev)
        task = ShuffleTask.from_config(meta["extra"].get("task", {}))
        loaded.append(_Run(name, ckpt, model, meta, task, TrainConfig.from_dict(meta["extra"]["train"])))
    first = loaded[0]
    for run in loaded[1:]:
        if run.cfg.dataset != first.cfg.dataset or not torch.equal(run.task.permutation, first.task.permutation):
            raise RandmixError(f"{run.name} was trained on {run.cfg.dataset} with permutation seed {run.task.permutation_seed}, "
                             f"{first.name} on {first.cfg.dataset} with seed {first.task.permutation_seed}; "
                             "one grid needs one dataset and one permutation")
    if progress:
        progress(f"loading the {first.cfg.dataset} test set")
    split = load_split(first.cfg.dataset, False, data_dir or first.cfg.data_dir)
    split = split.first(n_examples) if n_examples is not None else split
    if grid_images > len(split):
        raise RandmixError(f"grid_images={grid_images} is more than the {len(split)} test images scored")
    shown = to_unit(split.images[:grid_images])
    rows = [("ground truth", shown), ("scrambled", first.task.scramble(shown))]

    results = []
    for run, ref in zip(loaded, refs):
        if progress:
            progress(f"evaluating {run.name} on {len(split)} {run.cfg.dataset} test images")
        t0 = time.perf_counter()
        metrics = run.task.evaluate(run.model, split, batch_size, dev)
        recon = run.task.reconstruct(run.model, split.images[:grid_images], batch_size, dev)
        rows.append((f"reconstruction: {run.name} ({run.cfg.mixing})", recon))
        trainable, frozen = count_parameters(run.model)
        results.append(ShuffleResult(
            name=run.name, model=run.meta["model"], mixing=run.cfg.mixing, mixer_seed=run.cfg.mixer_seed,
            smooth_sigma=run.model.mixing.smooth_sigma, train_seed=run.cfg.seed,
            permutation_seed=run.task.permutation_seed, dataset=run.cfg.dataset, n_examples=len(split),
            loss=run.task.loss, epochs=run.meta["extra"]["epochs_done"],
            **{k: round(v, 6) for k, v in metrics.items()},
            params_trainable=trainable, params_frozen=frozen,
            checkpoint=ref,
            provenance=collect(dev, time.perf_counter() - t0),
            grid_png=grid_name,
        ))
    save_grid(out_dir / grid_name, rows)
    for result, path in zip(results, outputs):
        write_result(path, result, force=force)
    return results
