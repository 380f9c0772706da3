"""The line each benchmark prints first: when, on what and how busy the machine was, without which its ratios
cannot be compared. Imported by the scripts beside it (run by path, their folder is on ``sys.path``)."""

from __future__ import annotations

import datetime as dt
import os


def load() -> str:
    """The 1, 5 and 15 minute load averages, printed beside the timings they may explain."""
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def header(threads: str, torch_version: str, load_label: str = "load") -> str:
    return (f"{dt.date.today()} | cpu: {os.cpu_count()} cores, {threads} | torch {torch_version} | "
            f"{load_label} {load()}")
