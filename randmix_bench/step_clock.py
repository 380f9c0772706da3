"""How far a training is into its epoch, said at most every so often.

Both reporters that speak during an epoch use it: the command line's ``TrainProgress`` (a line in a log) and a
``randmix reproduce`` worker (an event to the parent). It imports nothing heavy, so the command line stays light.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["StepClock"]


@dataclass
class StepClock:
    """A run's optimizer steps counted (resumed epochs included) and the time of the last report."""

    per_epoch: int = 1
    done: int = 0
    last: float = field(default_factory=time.monotonic)

    def start(self, per_epoch: int, epochs_done: int) -> None:
        """A run starts (or resumes after ``epochs_done`` epochs of ``per_epoch`` steps); the clock starts now."""
        self.per_epoch, self.done, self.last = per_epoch, per_epoch * epochs_done, time.monotonic()

    def tick(self, interval: float) -> tuple[int, int] | None:
        """Count one step; return ``(epoch, step)``, the epoch under way (from 1) and its steps done, when
        ``interval`` seconds have passed since the last report. Never at an epoch's last step: its epoch line
        says it."""
        self.done += 1
        epoch, step = divmod(self.done, self.per_epoch)
        now = time.monotonic()
        if not step or now - self.last < interval:
            return None
        self.last = now
        return epoch + 1, step

    def rest(self) -> None:
        """Something was just said (an epoch's line): the next report waits a full interval."""
        self.last = time.monotonic()
