"""`randmix shuffle eval`: score pixel-shuffle runs against their baselines and draw the paper's picture grid.

The task itself (permutation, scrambling, training loss, PSNR / SSIM) lives in :mod:`randmix_bench.tasks`;
runs are trained by the ordinary trainer with a shuffle recipe. Here a set of finished runs (one per
variant, sharing a dataset and permutation) is rebuilt from their checkpoints, each scored on the first test
images into a :class:`~randmix_bench.results.ShuffleResult`, and their reconstructions drawn in one grid.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from randmix_bench.checkpoint import digests, load_model, resolve
from randmix_bench.data import load_split
from randmix_bench.device import resolve_device
from randmix_bench.errors import ExistsError, RandmixError
from randmix_bench.files import atomic_path, check_writable, exclusive, png_text
from randmix_bench.freezing import MixingReport, count_parameters
from randmix_bench.provenance import collect
from randmix_bench.recipes import TrainConfig
from randmix_bench.result_files import check_entry_name, check_replaceable, checkpoint_ref, read_result, write_result
from randmix_bench.results import ShuffleResult
from randmix_bench.run_folder import recorded_trace
from randmix_bench.tasks import ShuffleTask
from randmix_bench.tensors import to_unit

__all__ = ["save_grid", "grid_size", "evaluate_runs"]

# ----------------------------------------------------------------------------------------------- grid

GRID_PAD = 2
GRID_LABEL_HEIGHT = 14
GRID_KEY = "randmix-grid"  # the PNG text chunk that marks a grid ``randmix shuffle eval`` drew


def grid_size(n_images: int, n_rows: int, image_hw: tuple[int, int], scale: int) -> tuple[int, int]:
    """(width, height) in pixels of :func:`save_grid`'s picture: each row is a label band over
    ``n_images`` cells of ``scale`` x the image size, everything separated by :data:`GRID_PAD` pixels."""
    h, w = image_hw
    return GRID_PAD + n_images * (scale * w + GRID_PAD), GRID_PAD + n_rows * (GRID_LABEL_HEIGHT + scale * h + GRID_PAD)


def save_grid(path: str | Path, rows: Sequence[tuple[str, torch.Tensor]], scale: int = 3) -> Path:
    """Write a labelled PNG with one row of images per ``(label, images [n, C, H, W] in [0, 1])``, the
    layout of the paper's figures (ground truth / scrambled / reconstructions), atomically."""
    from PIL import Image, ImageDraw, PngImagePlugin

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
        rgb = images.clamp(0, 1).mul(255).round().to(torch.uint8).expand(-1, 3, -1, -1)
        pixels = rgb.repeat_interleave(scale, 2).repeat_interleave(scale, 3).permute(0, 2, 3, 1).numpy()
        for i, cell in enumerate(pixels):
            canvas.paste(Image.fromarray(cell), (GRID_PAD + i * (scale * w + GRID_PAD), top + GRID_LABEL_HEIGHT))
    path = Path(path)
    mark = PngImagePlugin.PngInfo()
    mark.add_text(GRID_KEY, path.name)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG", pnginfo=mark)
    return path


def _check_replaceable(results: Sequence[Path], grid: Path) -> None:
    """``--force`` replaces earlier outputs of this command only, checked before any work: each result an earlier
    shuffle result, the grid a PNG it drew (it carries the mark, or an earlier result names it)."""
    for path in results:
        check_replaceable(path, ShuffleResult)
    if not (grid.exists() or grid.is_symlink()):
        return
    named = any(path.is_file() and isinstance(r := read_result(path), ShuffleResult) and r.grid_png == grid.name
                for path in results)
    if not named and png_text(grid, GRID_KEY) != grid.name:
        raise ExistsError(f"{grid} exists and is not a grid randmix shuffle eval drew; --force only replaces an "
                          "earlier output: move it away or choose another --out-dir")


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
    train_loss: list[tuple[float, float]] | None  # the run's loss trace (randmix_bench.loss_curve), when recorded


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
    paths = [Path(r) for r in runs]
    # a run folder, or a published checkpoint file (named by its stem)
    names = [check_entry_name(r.stem if r.is_file() else r.resolve().name, "run folder name") for r in paths]
    if not paths:
        raise RandmixError("give at least one run folder")
    for name, value in (("n_examples", n_examples), ("grid_images", grid_images), ("batch_size", batch_size)):
        if value is not None and value < 1:
            raise RandmixError(f"{name} must be >= 1, got {value}")
    if len(set(names)) != len(names):
        raise RandmixError(f"run folders need distinct names (their results are <name>.json): {', '.join(names)}")
    check_writable(out_dir, "--out-dir")
    if out_dir.resolve() in {r.resolve() for r in paths}:
        raise RandmixError(f"--out-dir {out_dir} is one of the run folders being scored; "
                           "results go in their own folder, e.g. leaderboards/<dataset>/shuffle")
    result_paths, grid_path = [out_dir / f"{name}.json" for name in names], out_dir / grid_name
    # one writer per output file: a second evaluation writing any of them fails at once instead of interleaving
    # files, while evaluations with other runs and grids (reproduce's seeds, in parallel) write beside it; taken
    # in one order, so of two evaluations that share a file one goes ahead
    with ExitStack() as locks:
        for path in sorted({*result_paths, grid_path}):
            locks.enter_context(exclusive(path, f"--out-dir {out_dir} ({path.name})"))
        existing = [str(p) for p in [*result_paths, grid_path] if p.exists()]
        if existing and not force:
            raise ExistsError(f"{', '.join(existing)} already exist; pass --force to overwrite")
        _check_replaceable(result_paths, grid_path)
        checkpoints = [resolve(r) for r in paths]  # fail on a missing checkpoint before any work
        refs = [checkpoint_ref(c, out, *digests(c)) for c, out in zip(checkpoints, result_paths, strict=True)]
        dev = resolve_device(device)

        loaded = []
        for name, ckpt, ref in zip(names, checkpoints, refs, strict=True):
            model, meta = load_model(ckpt, map_location=dev)
            task = ShuffleTask.from_record(meta["extra"].get("task", {}))
            # in the current layout, old checkpoints too (complete_config)
            cfg = TrainConfig.from_dict(meta["extra"]["train"])
            loaded.append(_Run(name, ckpt, model, meta, task, cfg, recorded_trace(ckpt, meta, ref.sha256)))
        first = loaded[0]
        for run in loaded[1:]:
            if run.cfg.dataset != first.cfg.dataset or not torch.equal(run.task.permutation, first.task.permutation):
                raise RandmixError(f"{run.name} was trained on {run.cfg.dataset} "
                                 f"with permutation seed {run.task.permutation_seed}, "
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
        for run, ref in zip(loaded, refs, strict=True):
            if progress:
                progress(f"evaluating {run.name} on {len(split)} {run.cfg.dataset} test images")
            t0 = time.perf_counter()
            metrics = run.task.evaluate(run.model, split, batch_size, dev)
            rounded: dict[str, Any] = {k: round(v, 6) for k, v in metrics.items()}  # psnr, ssim and their baselines
            recon = run.task.reconstruct(run.model, split.images[:grid_images], batch_size, dev)
            rows.append((f"reconstruction: {run.name} ({run.cfg.mixing})", recon))
            trainable, frozen = count_parameters(run.model)
            results.append(ShuffleResult(
                name=run.name, model=run.meta["model"], mixing=run.cfg.mixing, mixer_seed=run.cfg.mixer_seed,
                smooth_sigma=cast(MixingReport, run.model.mixing).smooth_sigma, train_seed=run.cfg.seed,
                permutation_seed=run.task.permutation_seed, dataset=run.cfg.dataset, n_examples=len(split),
                loss=run.task.loss, epochs=run.meta["extra"]["epochs_done"],
                **rounded,
                params_trainable=trainable, params_frozen=frozen,
                checkpoint=ref,
                provenance=collect(dev, time.perf_counter() - t0),
                grid_png=grid_name, train_loss=run.train_loss,
            ))
        save_grid(grid_path, rows)
        for result, path in zip(results, result_paths, strict=True):
            write_result(path, result, force=force)
        return results
