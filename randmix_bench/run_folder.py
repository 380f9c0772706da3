"""A training run's folder: what ``randmix train`` may do with it, its lock, its resume state, its status.

``run.json`` (its ``format`` marks the folder as a randmix run; its ``status`` reads ``running``, ``finished`` or
``failed``), ``resume.pt`` (model, optimizer, RNG and progress after the last finished epoch) and the final
checkpoint. A non-empty folder is refused unless it is one of ours and ``resume`` or ``force`` says what to do
with it; rank 0 holds the folder's lock for the whole run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from randmix_bench import loss_curve
from randmix_bench.checkpoint import CHECKPOINT_NAME, CheckpointError, read_checkpoint
from randmix_bench.distributed import Distributed
from randmix_bench.errors import ExistsError, RandmixError
from randmix_bench.files import BusyError, atomic_path, exclusive, jsonable, read_json, write_json
from randmix_bench.recipes import RUNTIME_FIELDS, TrainConfig, complete_config
from randmix_bench.tasks import Task

__all__ = ["RUN_NAME", "RESUME_NAME", "RUN_FORMAT", "run_lock", "mark_failed", "is_run_dir", "check_run_dir",
           "prepare_run_dir", "load_resume_state", "save_resume_state", "recorded_trace"]

RUN_NAME = "run.json"
RESUME_NAME = "resume.pt"
RUN_FORMAT = "randmix-run/1"  # run.json's "format": how --resume and --force know a folder is ours
RESUME_KEYS = frozenset({"model", "optimizer", "rng_cpu", "config", "task", "history", "wall_s"})


@contextmanager
def run_lock(out: Path, dist: Distributed) -> Iterator[None]:
    """Rank 0 holds ``out``'s lock for the whole run; every rank fails at once when another process has it."""
    with ExitStack() as stack:
        busy = None
        if dist.main:
            try:
                stack.enter_context(exclusive(out, f"--out {out}"))
            except BusyError as e:
                busy = str(e)
        busy = dist.from_main(busy)
        if busy is not None:
            raise BusyError(busy)
        yield


def mark_failed(run_json: Path, reason: str) -> None:
    """Set a run record's status to "failed" (with the reason), best effort: atomically when the disk allows,
    else in place, padded with spaces to the old length, which needs no new block on a full disk."""
    try:
        record = json.loads(run_json.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(record, dict) or record.get("status") != "running":
        return
    record.update(status="failed", error=reason[:500])
    try:
        write_json(run_json, record)
    except OSError:
        text = json.dumps({**record, "error": reason[:100]}, separators=(",", ":")).encode()
        try:
            size = run_json.stat().st_size
            if len(text) <= size:
                with open(run_json, "r+b") as f:
                    f.write(text + b" " * (size - len(text)))
        except OSError:
            pass  # nothing more can be done on this disk; the error itself is reported


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` holds a run this trainer started: a ``run.json`` with :data:`RUN_FORMAT`."""
    try:
        record = json.loads((path / RUN_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("format") == RUN_FORMAT


def check_run_dir(out: Path, resume: bool, force: bool) -> bool:
    """Whether ``out`` holds a run to continue or replace; refuse a non-empty folder unless it is one of
    ours and ``resume`` or ``force`` says what to do with it. Never writes (callers check folders early)."""
    if out.exists() and not out.is_dir():
        raise ExistsError(f"--out {out} is a file, not a folder; choose a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    if not is_run_dir(out):
        raise ExistsError(f"--out {out} is not empty and not a randmix run folder (no {RUN_NAME} written by randmix "
                          "train); choose a new or empty folder (--resume and --force only act on randmix runs)")
    if not resume and not force:
        raise ExistsError(f"--out {out} is not empty; pass --resume to continue its run or --force to overwrite it")
    return True


def prepare_run_dir(out: Path, cfg: TrainConfig, task: Task, resume: bool, force: bool) -> dict[str, Any] | None:
    """Check ``out`` before anything is written; return the resume state to continue from, if any.

    Empty or missing: a fresh run (also with ``resume``: nothing to continue). One of our runs: continued
    with ``resume`` (same model and config required) or started over with ``force`` (its resume state and
    checkpoint removed, so a half-done new run never sits beside the old run's weights). Anything else: refused.
    """
    if not check_run_dir(out, resume, force):
        return None
    if force:
        for name in (RESUME_NAME, CHECKPOINT_NAME):
            out.joinpath(name).unlink(missing_ok=True)  # every DDP rank may try
        return None
    if out.joinpath(CHECKPOINT_NAME).is_file():
        _, meta = read_checkpoint(out / CHECKPOINT_NAME)
        if meta["model"] != cfg.model:
            raise CheckpointError(f"cannot resume: the checkpoint in {out} is a {meta['model']}, not a {cfg.model}")
    if not out.joinpath(RESUME_NAME).is_file():
        run = out / RUN_NAME
        if run.is_file() and json.loads(run.read_text()).get("status") == "finished":
            raise RandmixError(f"the run in {out} has finished; nothing to resume (use --force to train again)")
        return None  # stopped before its first epoch ended: start from scratch
    state = load_resume_state(out / RESUME_NAME)
    _check_same_run(out, state, cfg, task)
    return state


def load_resume_state(path: Path) -> dict[str, Any]:
    """``path`` as written by :func:`save_resume_state` (by any version: its config comes completed to the
    current layout), or a one-line error naming the file and the fix."""
    fix = "pass --force to start the run over"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (truncated zip, EOF, a pickle weights_only refuses: all mean unusable)
        raise RandmixError(f"resume state {path} is truncated or corrupt ({type(e).__name__}); {fix}") from None
    if not (isinstance(state, dict) and RESUME_KEYS <= state.keys()
            and isinstance(state["config"], dict) and isinstance(state["task"], dict)):
        raise RandmixError(f"{path} is not a resume state written by randmix train; {fix}")
    state["config"] = complete_config(state["config"], state["task"])
    return state


def _check_same_run(out: Path, state: dict[str, Any], cfg: TrainConfig, task: Task) -> None:
    saved, asked = state["config"], jsonable(cfg.to_dict())
    if saved["model"] != asked["model"]:
        raise CheckpointError(f"cannot resume: the run in {out} trains a {saved['model']}, not a {asked['model']}")
    diff = [f"{k}={saved.get(k)!r} (asked {asked[k]!r})"
            for k in asked if k not in RUNTIME_FIELDS and saved.get(k) != asked[k]]
    if not diff:  # the same settings can still imply another task record, e.g. a folder dataset's new image size
        saved_task, asked_task = state["task"], jsonable(task.config())
        brief = lambda v: r if len(r := repr(v)) <= 60 else r[:56] + " ..."  # noqa: E731  (e.g. a stored permutation)
        diff = [f"task.{k}={brief(saved_task.get(k))} (asked {brief(asked_task.get(k))})"
                for k in sorted(set(saved_task) | set(asked_task)) if saved_task.get(k) != asked_task.get(k)]
    if diff:
        raise RandmixError(f"cannot resume {out} with different settings: {'; '.join(diff)}; repeat the original "
                           "command, or --force to start over")


def save_resume_state(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainConfig, task: Task,
                      history: list[dict[str, Any]], wall_s: float) -> None:
    """Everything needed to continue after the last finished epoch, in one atomic file."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "config": jsonable(cfg.to_dict()),
        "task": jsonable(task.config()),
        "history": history,
        "wall_s": wall_s,
    }
    if next(model.parameters()).is_cuda:
        state["rng_cuda"] = torch.cuda.get_rng_state()
    buffer = io.BytesIO()  # serialized in memory, then written: a full disk is the write's OSError, not torch's error
    torch.save(state, buffer)
    with atomic_path(out / RESUME_NAME) as tmp:
        tmp.write_bytes(buffer.getvalue())


def recorded_trace(checkpoint: Path, meta: dict[str, Any], file_sha256: str) -> list[tuple[float, float]] | None:
    """The training-loss trace of the run that wrote ``checkpoint`` (metadata ``meta``, file digest ``file_sha256``):
    the checkpoint's own record (``extra["loss_trace"]``); for a checkpoint trained before it was recorded, the
    history of the ``run.json`` beside it when that names this very file (its ``checkpoint.sha256``); else None.
    A trace that is not valid is a one-line error naming its file."""
    epochs = meta["extra"].get("epochs_done", 0)
    if "loss_trace" in meta["extra"]:
        return loss_curve.check_trace(meta["extra"]["loss_trace"], f"{checkpoint} (metadata loss_trace)", epochs)
    run_json = checkpoint.parent / RUN_NAME
    try:
        run = read_json(run_json, "run record")  # a regular file of a sane size: a FIFO there would block
        if not (isinstance(run, dict) and run.get("format") == RUN_FORMAT
                and run.get("checkpoint", {}).get("sha256") == file_sha256):
            return None
        trace = loss_curve.from_history(run["history"])
    except (RandmixError, KeyError, TypeError, AttributeError):
        return None  # no readable run record of this checkpoint
    return loss_curve.check_trace(trace, f"{run_json} (history)", epochs)
