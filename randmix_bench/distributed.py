"""This process's place in a ``torchrun`` job, as the trainer sees it: rank, barriers, reductions, its device."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as torch_dist

from randmix_bench.device import resolve_device

__all__ = ["Distributed", "rank_device"]


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Distributed:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch_dist.barrier()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. decodes and caches a dataset), then the others."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            value = value.clone()
            torch_dist.all_reduce(value)  # gloo has no AVG
            value /= self.world_size
        return value

    def from_main(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]


def rank_device(device: str | None, dist: Distributed) -> torch.device:
    """``device`` (see :func:`resolve_device`), with each DDP rank on its own GPU."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        if dist.world_size > 1 or dev.index is None:
            dev = torch.device("cuda", dist.local_rank if dist.world_size > 1 else torch.cuda.current_device())
        torch.cuda.set_device(dev)
    return dev
