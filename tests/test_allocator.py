"""The CPU memory policy: memory a process frees is kept for its next use (randmix_bench/allocator.py)."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from randmix_bench import allocator
from randmix_bench.cli import app

app_module = importlib.import_module("randmix_bench.cli.app")  # the package's `app` is the Typer instance

# In a fresh process (the policy is process-wide): a training step's pattern, 16 blocks of 8 MB allocated and
# filled, then freed, five times; the page faults of the last three steps and the pages one step allocates.
REFAULTS = """
import resource, sys, torch
from randmix_bench.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "1" else None
x = torch.randn(64, 32, 32, 32)
for step in range(5):
    if step == 2:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    acts = [x]
    for _ in range(8):
        acts.append(torch.nn.functional.gelu(acts[-1]) * 0.5)
    del acts
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 3, 16 * x.nbytes // resource.getpagesize())
"""


def _refaults(policy: bool) -> tuple[str, int, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}  # glibc's own
    if not policy:  # the control holds glibc's initial 128 KiB mmap threshold: glibc's own raising of it depends on
        env["MALLOC_MMAP_THRESHOLD_"] = str(128 << 10)  # what the process freed before, which made the control flaky
    out = subprocess.run([sys.executable, "-c", REFAULTS, "1" if policy else "0"], check=True, capture_output=True,
                         text=True, env=env).stdout.split()
    return out[0], int(out[1]), int(out[2])


def _huge_pages_always() -> bool:
    """Transparent huge pages for every mapping: faults then come 2 MB at a time, and the counts mean less."""
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return path.exists() and "[always]" in path.read_text()


@pytest.mark.slow
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's thresholds: glibc only")
@pytest.mark.skipif(_huge_pages_always(), reason="transparent huge pages are 'always': page-fault counts differ")
def test_freed_memory_is_reused_instead_of_faulted_in_again() -> None:
    kept, faults, pages = _refaults(policy=True)
    assert kept == "True"
    assert faults < pages // 100
    _, faults_by_default, _ = _refaults(policy=False)  # the control: freed blocks unmapped, faulted in again
    assert faults_by_default > pages // 10


def test_every_command_applies_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(app_module, "keep_freed_memory", lambda: calls.append(True) or True)
    result = CliRunner().invoke(app, ["data", "list"], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert calls == [True]


class _Libc:
    """A C library whose mallopt takes an mmap threshold up to ``cap`` only, recording every call."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.calls: list[tuple[int, int]] = []

        def mallopt(option: int, value: int) -> int:
            self.calls.append((option, value))
            return int(option != -3 or value <= self.cap)

        self.mallopt = mallopt


@pytest.mark.parametrize(("cap", "calls", "kept"), [
    (1 << 30, [(-3, 1 << 30), (-1, 1 << 30)], True),
    (32 << 20, [(-3, 1 << 30), (-3, 32 << 20), (-1, 1 << 30)], True),  # glibc's cap on 64-bit in some versions
    (0, [(-3, 1 << 30), (-3, 32 << 20)], False),  # no trim threshold alone: it would freeze the mmap threshold
], ids=["takes 1 GiB", "caps at 32 MiB", "refuses"])
def test_a_capped_mmap_threshold_falls_back_and_the_trim_threshold_follows_only_a_set_one(
        monkeypatch: pytest.MonkeyPatch, cap: int, calls: list[tuple[int, int]], kept: bool) -> None:
    libc = _Libc(cap)
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: libc)
    assert allocator.keep_freed_memory() is kept
    assert libc.calls == calls
