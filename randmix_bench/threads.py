"""The CPU thread policy of every long command: how many torch threads a process uses, and how they wait.

Two rules, both measured on this project's 2-core machines (benchmarks/RESULTS.md):

- **Threads wait passively.** torch's OpenMP threads (libgomp) spin at every barrier by default. When another
  process holds a core, a spinning thread burns the time slice its descheduled partner needs, and a training step
  gets 3-20x slower than on one thread. ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep instead. libgomp reads the
  variable once, when torch loads it, so :func:`prefer_passive_waiting` runs in ``randmix_bench/__init__.py``
  before torch is imported; a value the user set is kept, and when torch was imported first it has no effect.
- **``auto`` uses every core this process may run on** (``os.sched_getaffinity``), shared evenly between the
  processes of one command (``randmix reproduce --jobs``). With passive waiting, two threads on a machine where
  another process holds one core run about as fast as one thread would, so ``auto`` does not need to guess the
  load, which changes during a run of hours anyway.

The count is fixed for a process: training results depend on it (reductions split across threads round
differently), so a run records the threads it used. The library never sets it; the CLI does, per command.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from randmix_bench.errors import RandmixError

__all__ = ["AUTO", "WAIT_POLICY_ENV", "available_cores", "cpu_threads", "parse_threads", "prefer_passive_waiting"]

AUTO = "auto"
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"


def prefer_passive_waiting() -> None:
    """Make OpenMP threads sleep rather than spin while they wait, unless the user chose otherwise. Effective only
    before torch is first imported (libgomp reads it when it loads); also inherited by child processes."""
    os.environ.setdefault(WAIT_POLICY_ENV, "PASSIVE")


def available_cores() -> int:
    """The CPUs this process may run on (its affinity mask: a container's or taskset's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_threads(value: str | int, jobs: int = 1) -> int:
    """``"auto"`` or a count -> torch threads per process, for ``jobs`` processes sharing the machine.

    ``auto`` gives each process an equal share of :func:`available_cores`, at least one. A count must be in
    1..available cores: more threads than cores only oversubscribe them (and thousands exhaust memory)."""
    cores = available_cores()
    text = str(value).strip().lower()
    if text == AUTO:
        return max(1, cores // max(1, jobs))
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= cores:
        raise RandmixError(f"threads must be in 1..{cores} (the CPUs this process may use) or auto, got {value}")
    return n


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None: leave the count as it is), restoring the count afterwards."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
