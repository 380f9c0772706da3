"""The CPU memory policy of every command: memory a process frees is kept for its next use, not handed back.

Why: glibc's malloc serves a block above its mmap threshold with a fresh ``mmap`` and unmaps it when freed, and
trims its heap's top as it shrinks; it raises the threshold only after it has freed a block that large. So how often
a training step faults its activations in again, page by page, depends on what the process allocated before:
86,000-114,000 page faults a step (a third of a gigabyte and more, pages the kernel zeroes) for the ConvMixer-64/8
at batch 512. With both thresholds raised the freed blocks stay in the heap whatever came before: a sixth to a
twelfth of the faults and the same losses; 1.12-1.15x the images/s in a probe of the trainer's pieces, about 1.02x
(within the runs' spread) in ``randmix train`` (benchmarks/allocator_policy.py, benchmarks/RESULTS.md).
The cost: a process keeps its peak memory until it exits, which a long command reaches at every step anyway. Only
glibc has these knobs; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["keep_freed_memory"]

# mallopt(3) options, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Above any single block a command allocates (a batch of activations is tens of MB); glibc versions that cap the
# mmap threshold at HEAP_MAX_SIZE / 2 (32 MiB on 64-bit) refuse it, and get that cap instead. The trim threshold has
# no cap: the heap's freed top (every block a step frees, hundreds of MB) stays below it either way.
_MMAP_THRESHOLDS = (1 << 30, 32 << 20)
_TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Raise this process's malloc mmap and trim thresholds (see the module docstring); whether it took effect.
    Process-wide and inherited by forked children; a spawned child calls it itself."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to load, or one without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap_set = any(mallopt(_M_MMAP_THRESHOLD, t) == 1 for t in _MMAP_THRESHOLDS)  # the first one glibc takes
    # only then the trim threshold: setting it alone would also stop glibc raising the mmap threshold by itself
    return mmap_set and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
