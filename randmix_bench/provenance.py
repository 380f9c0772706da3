"""Where a number was measured: device, library versions, git revision, date, command line."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from randmix_bench.results import Provenance

RESULTS_FOLDER = "leaderboards"
TRACKED_PACKAGES = ("torch", "torchvision", "timm", "pyautoattack", "robustbench", "randmix-bench")


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({os.cpu_count()} cores)"


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in TRACKED_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_revision() -> str:
    """The checkout's commit, with ``-dirty`` for uncommitted changes to anything but ``leaderboards/`` (where
    ``randmix reproduce`` writes: its second job must not call the code dirty because the first wrote a
    result). ``RANDMIX_GIT_REVISION``, set by whoever sent a copy of the tree to another machine
    (tools/gpu_run.py), wins: the copy may hold a stale ``.git`` of its own (the GPU machine's did: it named
    an old commit, dirty), so only the sender knows what was sent."""
    copied = os.environ.get("RANDMIX_GIT_REVISION", "")
    if copied:
        return copied
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return ""
        status = ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".",
                  f":(exclude){RESULTS_FOLDER}"]
        dirty = subprocess.run(status, capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return ""


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def collect(device: torch.device | str, wall_time_s: float, command: str | None = None) -> Provenance:
    """A :class:`Provenance` for a run that just finished on ``device``."""
    return Provenance(
        device=device_name(device),
        date=utc_now(),
        wall_time_s=round(wall_time_s, 3),
        versions=versions(),
        command=command if command is not None else " ".join(["randmix", *sys.argv[1:]]),
        git_revision=git_revision(),
        threads=torch.get_num_threads() if torch.device(device).type == "cpu" else None,
    )
