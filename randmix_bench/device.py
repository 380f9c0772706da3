"""Which device a command runs on: one rule for every command."""

from __future__ import annotations

import torch

from randmix_bench.errors import RandmixError

CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else the CPU. Anything that cannot run a model here (an
    unknown name, a CUDA device that is not there, ``meta``, ``xla``, ``mps`` without Metal) is a one-line
    :class:`RandmixError` before any work starts, rather than a torch traceback halfway through."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise RandmixError(f"unknown device {device!r}; use {CHOICES}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise RandmixError(f"device {device} requested but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise RandmixError(f"device {device} does not exist: this machine has {count} CUDA device(s), "
                               f"cuda:0..cuda:{count - 1}")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise RandmixError(f"device {device} requested but Metal (MPS) is not available here; use --device cpu")
    elif dev.type != "cpu":
        raise RandmixError(f"device {device!r} cannot run randmix models; use {CHOICES}")
    return dev
