"""The trainer: one short loop (airbench-style), fast on a GPU and exactly resumable on a CPU.

Per step: draw a batch from the device-resident loader, compute the loss of the config's task
(``randmix_bench.tasks``: classification or pixel un-shuffling; bf16 autocast on CUDA),
backward, clip, optimizer step at the scheduled learning rate. Nothing in a step waits for the GPU: the
loss is summed on the device, per tenth of the epoch (:mod:`randmix_bench.loss_curve`: the run's loss curve),
and read once per epoch. Frozen mixers are buffers, so they are neither in
the optimizer nor given weight gradients (``chans`` runs skip the depthwise weight-gradient kernels).

A run folder (:mod:`randmix_bench.run_folder`) holds ``run.json`` (config, per-epoch metrics, test metrics,
provenance; written before the first epoch and rewritten after each), while training ``resume.pt``, and at the
end ``checkpoint.safetensors`` (weights + frozen buffers + how to rebuild the model). Data order and
augmentation are a pure function of (seed, epoch), so ``resume=True`` ends with bit-identical weights
on the CPU. A run holds a lock on its folder, and an epoch whose loss or weights are not finite
stops it before that epoch is saved.

The trainer prints nothing: it reports each step, epoch and the finished run to a :class:`TrainReporter`
(the command line's progress bar and summary line) and logs each epoch and the result through ``logging``.

Several processes: ``torchrun --nproc_per_node=N -m randmix_bench.cli train ...`` runs DDP (NCCL on
CUDA, gloo on the CPU); each rank trains on its slice of every global batch, BatchNorm statistics are
per rank (rank 0's are saved), and only rank 0 writes or evaluates.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as torch_dist
from torch import nn

from randmix_bench import loss_curve
from randmix_bench.checkpoint import CHECKPOINT_NAME, save_checkpoint
from randmix_bench.data import load_split
from randmix_bench.distributed import Distributed, rank_device
from randmix_bench.errors import RandmixError
from randmix_bench.files import check_writable, sha256, write_json
from randmix_bench.freezing import count_parameters
from randmix_bench.loader import Augment, DeviceLoader
from randmix_bench.provenance import collect
from randmix_bench.recipes import TrainConfig
from randmix_bench.run_folder import (
    RESUME_NAME,
    RUN_FORMAT,
    RUN_NAME,
    mark_failed,
    prepare_run_dir,
    run_lock,
    save_resume_state,
)
from randmix_bench.tasks import Task, task_for
from randmix_bench.vocab import Optimizer

__all__ = ["train", "train_step", "make_optimizer", "TrainReporter"]

log = logging.getLogger(__name__)


class TrainReporter(Protocol):
    """Where :func:`train` reports while it runs, on rank 0 only (the command line draws a progress bar)."""

    def start(self, steps: int, epochs: int, epochs_done: int) -> None:
        """Training begins (or resumes after ``epochs_done`` epochs); an epoch is ``steps`` optimizer steps."""

    def step(self, lr: float) -> None:
        """One optimizer step ran at learning rate ``lr``."""

    def epoch(self, record: dict[str, Any], epochs: int) -> None:
        """An epoch ended and was saved: ``record`` is its ``run.json`` history entry."""

    def stop(self) -> None:
        """The epochs are over (all done, or an error stopped them); the test evaluation follows."""

    def finished(self, summary: dict[str, Any], out: Path) -> None:
        """The run is written: ``summary`` is its ``run.json``, in ``out``."""


class _Quiet:
    """The reporter when none is given, and on ranks other than 0: the log alone says what happens."""

    def start(self, steps: int, epochs: int, epochs_done: int) -> None:
        pass

    def step(self, lr: float) -> None:
        pass

    def epoch(self, record: dict[str, Any], epochs: int) -> None:
        pass

    def stop(self) -> None:
        pass

    def finished(self, summary: dict[str, Any], out: Path) -> None:
        pass


def make_optimizer(model: nn.Module, cfg: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    """AdamW or Nesterov SGD over the trainable parameters (frozen mixers are buffers: never included).

    ``cfg.decay_norm_bias=False`` puts 1-d parameters (norm scales and shifts, biases) in a group
    without weight decay; the public convmixer recipe decays everything.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.decay_norm_bias:
        groups = [{"params": params, "weight_decay": cfg.weight_decay}]
    else:
        groups = [
            {"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        ]
    if cfg.optimizer is Optimizer.ADAMW:
        return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused or None)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, fused=fused or None)


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    force: bool = False,
    device: str | None = None,
    reporter: TrainReporter | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir``; return the run summary (also written as ``run.json``).

    The task (``cfg.task``) is built from the config. A non-empty ``out_dir`` is refused unless ``resume``
    (continue its run; same config and model required) or ``force`` (start over, overwriting), and either
    only for a folder this trainer wrote. Raises a one-line :class:`RandmixError` for bad input (checked
    before any work), a busy folder, or a run that diverged. Progress goes to ``reporter`` (none: quiet) and
    the log.
    """
    cfg = cfg.validate()
    task = task_for(cfg)
    dist = Distributed.from_env()
    dev = rank_device(device, dist)
    out = Path(out_dir)
    check_writable(out, "--out")
    started_group = dist.world_size > 1 and not torch_dist.is_initialized()
    if started_group:
        torch_dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    started: list[Path] = []  # run.json, once this process marked it "running"
    try:
        with run_lock(out, dist):
            return _train(cfg, out, task, resume, force, dev, dist, reporter if reporter and dist.main else _Quiet(),
                          started)
    except Exception as e:
        if started:  # a run that stopped on an error (a full disk, a divergence) must not read "running" forever
            mark_failed(started[0], f"{type(e).__name__}: {e}")
        raise
    finally:
        if started_group:
            torch_dist.destroy_process_group()


def _train(cfg: TrainConfig, out: Path, task: Task, resume: bool, force: bool, device: torch.device,
           dist: Distributed, reporter: TrainReporter, started: list[Path]) -> dict[str, Any]:
    t_start = time.perf_counter()
    state = prepare_run_dir(out, cfg, task, resume, force)
    dist.barrier()  # every rank has checked the folder before rank 0 writes to it
    with dist.main_first():
        train_split = load_split(cfg.dataset, True, cfg.data_dir)
        test_split = load_split(cfg.dataset, False, cfg.data_dir) if dist.main else None

    cuda = device.type == "cuda"
    if cuda:  # autotune conv kernels for the one batch shape
        torch.backends.cudnn.benchmark = True
    model, model_kwargs = cfg.build_model(task, train_split.info)
    # channels_last everywhere: cuDNN's fastest layout, and oneDNN's depthwise backward on the CPU too
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg, fused=cuda)
    augment = Augment(cfg.crop_padding, cfg.flip, cfg.randaugment_n, cfg.randaugment_m)
    loader = DeviceLoader(train_split.images, train_split.labels, cfg.batch_size, augment, cfg.seed, device,
                          dist.rank, dist.world_size, channels_last=True, compile=cfg.compile)
    steps, history, wall_before = len(loader), [], 0.0
    bin_of = loss_curve.bins(steps)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if cuda and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
        history, wall_before = state["history"], state["wall_s"]
    net: nn.Module = model
    if dist.world_size > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if cfg.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    trainable = [p for p in model.parameters() if p.requires_grad]

    provenance = collect(device, 0.0)  # once: it asks git, which is too slow for every epoch

    def record(status: str, test: dict[str, float] | None, eval_s: float | None) -> dict[str, Any]:
        wall_s = round(wall_before + time.perf_counter() - t_start, 3)
        return _summary(cfg, task, model, model_kwargs, dist, steps, history, status, test, eval_s, out,
                        provenance.model_copy(update={"wall_time_s": wall_s}).model_dump())

    if dist.main:  # marks the folder as ours before anything else is written into it
        write_json(out / RUN_NAME, record("running", None, None))
        started.append(out / RUN_NAME)
    reporter.start(steps, cfg.epochs, len(history))
    try:
        for epoch in range(len(history), cfg.epochs):
            t0 = time.perf_counter()
            model.train()
            sums = torch.zeros(loss_curve.POINTS_PER_EPOCH, device=device)  # the loss summed per tenth of the epoch
            for i, (images, labels) in enumerate(loader.epoch(epoch)):
                lr = cfg.lr_at(epoch * steps + i, steps * cfg.epochs)
                sums[bin_of[i]].add_(train_step(net, task, optimizer, trainable, images, labels, lr, cfg.grad_clip,
                                                 cuda))
                reporter.step(lr)
            # The epoch's one host sync; non-finite weights turn the loss NaN, so one check covers both.
            sums_host = dist.mean(torch.where(_all_finite(model), sums, torch.nan)).tolist()
            loss = sum(sums_host) / steps
            if not math.isfinite(loss):
                kept = f"; {out / RESUME_NAME} keeps epoch {epoch}" if epoch else ""
                raise RandmixError(f"training diverged in epoch {epoch + 1} (train loss or weights {loss}) in {out}: "
                                   f"lower --lr (now {cfg.lr:g}) or set --grad-clip, then rerun with --force{kept}")
            seconds = time.perf_counter() - t0
            history.append({"epoch": epoch + 1, "train_loss": loss, "lr": lr, "seconds": round(seconds, 3),
                            "images_per_s": round(steps * cfg.batch_size / seconds, 1),
                            "loss_trace": loss_curve.epoch_trace(epoch, steps, sums_host)})
            if dist.main:
                wall_s = wall_before + time.perf_counter() - t_start
                save_resume_state(out, model, optimizer, cfg, task, history, wall_s)
                write_json(out / RUN_NAME, record("running", None, None))
            log.info("%s: epoch %d/%d loss %.4f lr %.4g %.0f img/s %.1f s", out, epoch + 1, cfg.epochs, loss, lr,
                     history[-1]["images_per_s"], seconds)
            reporter.epoch(history[-1], cfg.epochs)
    finally:
        reporter.stop()

    test: dict[str, float] | None = None
    eval_s = 0.0
    if dist.main:
        t0 = time.perf_counter()
        test = task.evaluate(model, test_split, cfg.eval_batch_size, device)  # type: ignore[arg-type]
        eval_s = time.perf_counter() - t0
    test = dist.from_main(test)
    summary = record("finished", test, eval_s)
    if dist.main:
        extra = {"train": cfg.to_dict(), "task": task.config(), "epochs_done": len(history),
                 "loss_trace": loss_curve.from_history(history)}
        save_checkpoint(out / CHECKPOINT_NAME, model, cfg.model, model_kwargs, extra=extra)
        summary["checkpoint"] = {"path": CHECKPOINT_NAME, "sha256": sha256(out / CHECKPOINT_NAME)}
        write_json(out / RUN_NAME, summary)
        (out / RESUME_NAME).unlink(missing_ok=True)
        log.info("%s: finished, test %s", out, test)
        reporter.finished(summary, out)
    dist.barrier()
    return summary


def _all_finite(model: nn.Module) -> torch.Tensor:
    """Whether every float weight and buffer is finite, as a device tensor (no host sync)."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    return torch.stack([t.isfinite().all() for t in tensors]).all()


def train_step(net: nn.Module, task: Task, optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor],
               images: torch.Tensor, labels: torch.Tensor, lr: float, grad_clip: float, cuda: bool) -> torch.Tensor:
    """One optimizer step; returns the loss as a device tensor (no host sync)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
        loss = task.batch_loss(net, images, labels)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach().float()


def _summary(cfg: TrainConfig, task: Task, model: nn.Module, model_kwargs: dict[str, Any], dist: Distributed,
             steps: int, history: list[dict[str, Any]], status: str, test: dict[str, float] | None,
             eval_s: float | None, out: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    trainable, frozen = count_parameters(model)
    return {
        "format": RUN_FORMAT,
        "status": status,
        "model": cfg.model,
        "mixing": cfg.mixing,
        "dataset": cfg.dataset,
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "task": task.config(),
        "model_kwargs": model_kwargs,
        "params": {"trainable": trainable, "frozen": frozen},
        "world_size": dist.world_size,
        "steps_per_epoch": steps,
        "epochs_done": len(history),
        "history": history,
        "train_time_s": round(sum(h["seconds"] for h in history), 3),
        "eval_time_s": None if eval_s is None else round(eval_s, 3),
        "test": test,
        "out_dir": str(out),
        "provenance": provenance,
    }
