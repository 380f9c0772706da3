"""Attack batches side by side in forked processes on a CPU, one thread each.

Why: a small model's operations barely gain from a second thread (each op is too short to split), while the
batches of one attack are independent: AutoAttack seeds every batch with the same seed, so a batch's outcome is the
same in whichever process and order it is attacked. So ``processes`` one-thread processes attack that many batches
at once. Forked, not spawned: the children share the model and the points with the parent and start in
milliseconds. Each child runs one thread, as DataLoader workers do: OpenMP's thread pool does not survive a fork,
and a one-thread op never enters it. What a child logs is handled by the parent's loggers (AutoAttack's warnings
are the result's flags, :func:`~randmix_bench.robustness.checks.autoattack_flags`), and a child dies with its parent.
"""

from __future__ import annotations

import copy
import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import sys
import time
import traceback
from collections.abc import Callable, Generator, Sequence
from typing import Any

import torch

from randmix_bench.errors import RandmixError

__all__ = ["can_fork", "attack_batches"]

AttackOne = Callable[[list[int]], list[int]]  # the indices of one batch -> those its attack broke

_attack_one: AttackOne | None = None  # set in the parent before the fork; the children inherit it


def can_fork(device: torch.device) -> bool:
    """Whether batches can run in forked children here: on a CPU, on Linux (fork is unsafe on macOS)."""
    return device.type == "cpu" and sys.platform.startswith("linux")


_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def _die_with(parent: int) -> None:
    """SIGKILL this process when ``parent`` dies: a parent killed or terminated (``kill``, a reproduce worker
    stopped) runs no cleanup, and its orphaned children would attack on, unread, for their whole share."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the prctl
        os._exit(1)


def _portable(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` that pickles: its message formatted, its traceback as text (as QueueHandler sends)."""
    record = copy.copy(record)
    record.msg, record.args = record.getMessage(), None
    if record.exc_info:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    return record


def _log_to(results: Any) -> None:
    """Send every record this process logs to the parent instead of to this process's handlers: they are copies
    of the parent's, and what they collect here (AutoAttack's zero-gradient warnings from inside APGD-T and
    APGD-DLR, a result's flags) would be lost with the child."""

    def send(self: logging.Logger, record: logging.LogRecord) -> None:
        results.put(("log", -1, _portable(record)))

    logging.Logger.callHandlers = send  # type: ignore[method-assign]  # this process only: a fork of the parent


def _child(parent: int, batches: Sequence[tuple[int, list[int]]], results: Any) -> None:
    """One child: attack its share of the batches, send each outcome (or the error that ended it) to the parent."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the children
    _log_to(results)
    torch.set_num_threads(1)
    assert _attack_one is not None
    try:
        for b, idx in batches:
            results.put(("done", b, _attack_one(idx)))
    except RandmixError as e:
        results.put(("failed", -1, str(e)))
    except BaseException:  # noqa: BLE001  (the parent re-raises it with this traceback)
        results.put(("crashed", -1, traceback.format_exc()))


def attack_batches(attack_one: AttackOne, batches: Sequence[tuple[int, list[int]]],
                   processes: int) -> Generator[tuple[int, list[int], float], None, None]:
    """``(batch, broken indices, seconds)`` for each ``(batch, indices)`` as it finishes, the batches dealt round
    robin to at most ``processes`` forked children. The seconds are the wall time since the previous outcome, so
    they add up to the attack's wall time. With one process (or batch) the batches run here, in order, and so they
    do in a daemonic process (a reproduce worker), which multiprocessing does not let have children."""
    global _attack_one
    processes = min(processes, len(batches))
    if processes <= 1 or multiprocessing.current_process().daemon:
        for b, idx in batches:
            began = time.perf_counter()
            broken = attack_one(idx)
            yield b, broken, time.perf_counter() - began
        return
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [context.Process(target=_child, args=(os.getpid(), batches[k::processes], results), daemon=True)
                for k in range(processes)]
    _attack_one = attack_one
    try:
        for child in children:  # in the try: a start that fails (no memory) stops those already started
            child.start()
        _attack_one = None  # the children hold their copy
        left, last = len(batches), time.perf_counter()
        while left:
            try:
                kind, b, payload = results.get(timeout=1.0)
            except queue.Empty:
                if any(child.exitcode for child in children):
                    raise RandmixError("an attack process died (out of memory? killed?); rerun the same command "
                                       "to continue where it stopped") from None
                continue
            if kind == "log":
                (logging.root if payload.name == "root" else logging.getLogger(payload.name)).handle(payload)
                continue
            if kind == "failed":
                raise RandmixError(payload)
            if kind == "crashed":
                raise RuntimeError(f"an attack batch failed in a worker process:\n{payload}")
            now = time.perf_counter()
            yield b, payload, now - last
            left, last = left - 1, now
    finally:
        _attack_one = None
        for child in children:
            if child.pid is None:  # never started
                continue
            if child.is_alive():
                child.terminate()
            child.join()
