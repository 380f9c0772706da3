"""Rich progress bars for the ``randmix`` commands (``train``, ``shuffle train``, ``reproduce``, ``eval``).

The library never prints: :func:`randmix_bench.train.train` reports through the
:class:`~randmix_bench.train.TrainReporter` protocol and :func:`randmix_bench.robustness.evaluate` through the
:class:`~randmix_bench.robustness.ProgressReporter` protocol; this module, owned by the command line, is the
terminal side of both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from randmix_bench.cli.views import train_line

__all__ = ["RichProgress", "TrainProgress"]


class TrainProgress:
    """A :class:`~randmix_bench.train.TrainReporter` on a console: a bar over every step with the epoch, last
    loss, lr and speed; a line per epoch; the finished run in one line. One reporter serves run after run."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[ips]} img/s"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task: Any = None

    def start(self, steps: int, epochs: int, epochs_done: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("train", total=steps * epochs, completed=steps * epochs_done,
                                           epoch=f"{epochs_done}/{epochs}", loss="-", lr="-", ips="-")

    def step(self, lr: float) -> None:
        self.progress.update(self.task, advance=1, lr=f"{lr:.4g}")

    def epoch(self, record: dict[str, Any], epochs: int) -> None:
        done, loss, ips = f"{record['epoch']}/{epochs}", record["train_loss"], record["images_per_s"]
        self.progress.update(self.task, epoch=done, loss=f"{loss:.4f}", ips=f"{ips:,.0f}")
        self.console.print(f"epoch {done}  loss {loss:.4f}  lr {record['lr']:.4g}  {ips:,.0f} img/s  "
                           f"{record['seconds']:.1f} s", highlight=False, soft_wrap=True)

    def stop(self) -> None:
        """Leave the last bar on screen; the next run draws its own."""
        self.progress.stop()
        self.progress.remove_task(self.task)

    def finished(self, summary: dict[str, Any], out: Path) -> None:
        self.console.print(train_line(summary, out), highlight=False, soft_wrap=True)


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
