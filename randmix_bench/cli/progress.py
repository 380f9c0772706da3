"""Progress of the ``randmix`` commands (``train``, ``shuffle train``, ``reproduce``, ``eval``, ``quickstart``):
Rich bars on a terminal, plain flushed lines anywhere else.

The library never prints: :func:`randmix_bench.train.train` reports through the
:class:`~randmix_bench.train.TrainReporter` protocol and :func:`randmix_bench.robustness.evaluate` through the
:class:`~randmix_bench.robustness.ProgressReporter` protocol; this module, owned by the command line, is the
console side of both. A bar is redrawn in place and shows nothing until it ends when stdout is a log file or a
pipe (a background run, CI), so there :func:`attack_progress` and :func:`status` give a :class:`PlainProgress`
and :class:`TrainProgress` prints a line per epoch instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from randmix_bench.cli.views import train_line

__all__ = ["PlainProgress", "RichProgress", "TrainProgress", "attack_progress", "status"]


class TrainProgress:
    """A :class:`~randmix_bench.train.TrainReporter` on a console: a bar over every step with the epoch, last
    loss, lr and speed (on a terminal only); a line when training starts and per epoch, with the time elapsed;
    the finished run in one line. One reporter serves run after run; ``first_line`` (e.g. which data the run
    uses) is printed once, when the first run starts, so that bad input still prints nothing but its error."""

    def __init__(self, console: Console, first_line: str | None = None) -> None:
        self.console, self.first_line = console, first_line
        self.began = time.monotonic()
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
        self.began = time.monotonic()
        if self.first_line is not None:
            self.console.print(self.first_line, highlight=False, soft_wrap=True)
            self.first_line = None
        resumed = f", resumed after {epochs_done}" if epochs_done else ""
        self.console.print(f"training: {epochs} epoch(s) of {steps} steps{resumed}", highlight=False)
        if self.console.is_terminal:
            self.progress.start()
        self.task = self.progress.add_task("train", total=steps * epochs, completed=steps * epochs_done,
                                           epoch=f"{epochs_done}/{epochs}", loss="-", lr="-", ips="-")

    def step(self, lr: float) -> None:
        self.progress.update(self.task, advance=1, lr=f"{lr:.4g}")

    def epoch(self, record: dict[str, Any], epochs: int) -> None:
        done, loss, ips = f"{record['epoch']}/{epochs}", record["train_loss"], record["images_per_s"]
        self.progress.update(self.task, epoch=done, loss=f"{loss:.4f}", ips=f"{ips:,.0f}")
        self.console.print(f"epoch {done}  loss {loss:.4f}  lr {record['lr']:.4g}  {ips:,.0f} img/s  "
                           f"{record['seconds']:.1f} s  (elapsed {time.monotonic() - self.began:.0f} s)",
                           highlight=False, soft_wrap=True)

    def stop(self) -> None:
        """Leave the last bar on screen; the next run draws its own."""
        if self.progress.live.is_started:
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


class PlainProgress:
    """Progress as plain log lines, flushed as they are printed, for a console that is not a terminal: a
    :class:`~randmix_bench.robustness.ProgressReporter` (a line when an attack starts, then points done, robust
    accuracy and time elapsed, at most every ``interval`` seconds and when it ends) and ``update(message)``, a
    line per status message. Any long command can report through it (:func:`attack_progress`, :func:`status`)."""

    def __init__(self, console: Console, interval: float = 10.0) -> None:
        self.console, self.interval = console, interval
        self.label, self.total, self.done, self.began, self.last = "", 0, 0, 0.0, 0.0

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True)

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.began = self.last = time.monotonic()
        self.update(f"{label}: {total} point(s) to attack")

    def advance(self, points: int, robust_acc: float) -> None:
        self.done += points
        now = time.monotonic()
        if self.done >= self.total or now - self.last >= self.interval:
            self.last = now
            self.update(f"{self.label}: {self.done}/{self.total} points, robust acc {100 * robust_acc:.2f}%, "
                        f"{now - self.began:.0f} s")


def attack_progress(console: Console) -> RichProgress | PlainProgress:
    """The attacks' reporter: bars on a terminal, plain lines elsewhere."""
    return RichProgress(console) if console.is_terminal else PlainProgress(console)


@contextmanager
def status(console: Console, message: str) -> Iterator[Callable[[str], None]]:
    """``console.status(message)`` on a terminal (a spinner whose text each call replaces); elsewhere a line per
    message reported, not ``message`` itself, so that bad input found before any work prints nothing but its
    error. Yields the function that reports the next message."""
    if console.is_terminal:
        with console.status(message) as spinner:
            yield spinner.update
    else:
        yield PlainProgress(console).update
