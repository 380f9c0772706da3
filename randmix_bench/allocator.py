"""The CPU memory policy of every command: memory a process frees is kept for its next use, not handed back.

Why: glibc's malloc serves a block above its mmap threshold with a fresh ``mmap`` and unmaps it when freed, and
trims its heap's top as it shrinks; it raises the threshold only after it has freed a block that large. So how often
a training step faults its activations in again, page by page, depends on what the process allocated before: up to
about 120,000 page faults a step (half a gigabyte of pages the kernel zeroes) for the ConvMixer-64/8 at batch 512.
With both thresholds raised the freed blocks stay in the heap whatever came before: a seventh to a tenth of the
faults and the same bits; 1.12-1.15x the images/s where glibc's defaults had not adapted, about 1.02x in
``randmix train``, whose data loading had already raised them (benchmarks/allocator_policy.py, benchmarks/RESULTS.md).
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
# mmap threshold at HEAP_MAX_SIZE / 2 (32 MiB on 64-bit) refuse it, and get that cap instead.
_THRESHOLDS = (1 << 30, 32 << 20)


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
    threshold = next((t for t in _THRESHOLDS if mallopt(_M_MMAP_THRESHOLD, t) == 1), None)
    # only then the trim threshold: setting it alone would also stop glibc raising the mmap threshold by itself
    return threshold is not None and mallopt(_M_TRIM_THRESHOLD, threshold) == 1
