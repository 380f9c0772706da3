"""Attack batches side by side in forked processes on a CPU, one thread each.

Why: a small model's operations barely gain from a second thread (each op is too short to split), while the
batches of one attack are independent: AutoAttack seeds every batch with the same seed, so a batch's outcome is the
same in whichever process and order it is attacked. So ``processes`` one-thread processes attack that many batches
at once. Forked, not spawned: the children share the model and the points with the parent and start in
milliseconds. Each child runs one thread, as DataLoader workers do: OpenMP's thread pool does not survive a fork,
and a one-thread op never enters it.
"""

from __future__ import annotations

import multiprocessing
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


def _child(batches: Sequence[tuple[int, list[int]]], results: Any) -> None:
    """One child: attack its share of the batches, send each outcome (or the error that ended it) to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the children
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
    they add up to the attack's wall time. With one process (or batch) the batches run here, in order."""
    global _attack_one
    processes = min(processes, len(batches))
    if processes <= 1:
        for b, idx in batches:
            began = time.perf_counter()
            broken = attack_one(idx)
            yield b, broken, time.perf_counter() - began
        return
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    _attack_one = attack_one
    try:
        children = [context.Process(target=_child, args=(batches[k::processes], results), daemon=True)
                    for k in range(processes)]
        for child in children:
            child.start()
    finally:
        _attack_one = None  # the children hold their copy
    try:
        left, last = len(batches), time.perf_counter()
        while left:
            try:
                kind, b, payload = results.get(timeout=1.0)
            except queue.Empty:
                if any(child.exitcode for child in children):
                    raise RandmixError("an attack process died (out of memory? killed?); rerun the same command "
                                       "to continue where it stopped") from None
                continue
            if kind == "failed":
                raise RandmixError(payload)
            if kind == "crashed":
                raise RuntimeError(f"an attack batch failed in a worker process:\n{payload}")
            now = time.perf_counter()
            yield b, payload, now - last
            left, last = left - 1, now
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join()
