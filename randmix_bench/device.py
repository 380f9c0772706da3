"""Which device a command runs on: one rule for every command."""

from __future__ import annotations

import torch

from randmix_bench.errors import RandmixError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else the CPU. A CUDA device that is not there, or a
    name torch does not know, is a one-line ``ValueError``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise RandmixError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RandmixError(f"device {device} requested but CUDA is not available here")
    return dev
