"""Rich progress bars for the ``randmix`` commands (``eval``, ``quickstart``).

The library never prints: :func:`randmix_bench.robustness.evaluate` reports progress through the
:class:`~randmix_bench.robustness.ProgressReporter` protocol, and this module, owned by the command line,
is the terminal side of that protocol.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["RichProgress"]


class RichProgress:
    """A :class:`~randmix_bench.robustness.ProgressReporter` drawn as Rich progress bars: which stage and
    attack, points done and left, current robust accuracy."""

    def __init__(self, console: Console | None = None) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[left]} left"),
            TextColumn("robust acc {task.fields[acc]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.task: Any = None
        self.left = 0

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def start(self, label: str, total: int) -> None:
        """A bar for the next attack; the display opens with the first one, so a command that fails before any
        attack prints nothing but its error."""
        if not self.progress.live.is_started:
            self.progress.start()
        self.task, self.left = self.progress.add_task(label, total=total, left=total, acc="-"), total

    def advance(self, points: int, robust_acc: float) -> None:
        self.left -= points
        self.progress.update(self.task, advance=points, left=self.left, acc=f"{100 * robust_acc:.2f}%")
