"""The line each benchmark prints first: when, on what and how busy the machine was, without which its ratios
cannot be compared. Imported by the scripts beside it (run by path, their folder is on ``sys.path``)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load() -> str:
    """The 1, 5 and 15 minute load averages, printed beside the timings they may explain."""
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def revision() -> str:
    """The checkout's commit, with ``+changes`` when its tracked files differ from it: the code a result came from."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def header(threads: str, torch_version: str, load_label: str = "load") -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{now} | code {revision()} | cpu: {os.cpu_count()} cores, {threads} | torch {torch_version} | "
            f"{load_label} {load()}")
