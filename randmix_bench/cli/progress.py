"""Progress of the ``randmix`` commands (``train``, ``shuffle train``, ``reproduce``, ``eval``, ``verify``).

The library never prints: :func:`randmix_bench.train.train` reports through the
:class:`~randmix_bench.train.TrainReporter` protocol and :func:`randmix_bench.robustness.evaluate` through the
:class:`~randmix_bench.robustness.ProgressReporter` protocol; this module, owned by the command line, is the
terminal side of both.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from randmix_bench.cli.views import train_line

if TYPE_CHECKING:
    from randmix_bench.jobs import AnyJob, JobState

__all__ = ["ReproduceProgress", "RichProgress", "TrainProgress", "duration"]


def duration(seconds: float) -> str:
    """``42 s``, ``7.5 min``, ``2 h 05 min``: what a person reads in a log."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class ReproduceProgress:
    """A :class:`~randmix_bench.reproduce.Reporter` that prints one plain line per job started and finished, each
    finish with the time left: the plan's estimates of the jobs not finished, scaled by how long the jobs run so
    far took against their estimates, shared by the ``workers`` running at once. Plain lines, so that a run in the
    background (``nohup randmix reproduce ... > log``) writes a log a person can follow."""

    def __init__(self, console: Console, jobs: Sequence[AnyJob], workers: int = 1) -> None:
        self.console, self.workers, self.total = console, workers, len(jobs)
        self.left = {id(j): j.estimate_s for j in jobs}  # not finished yet
        self.running: dict[int, float] = {}  # id(job) -> when it started
        self.estimated = self.measured = 0.0  # over the jobs that ran
        self.finished = self.skipped = 0

    def _print(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def eta_s(self) -> float:
        """Seconds left: estimates not yet finished (less time already spent on running jobs), times the
        measured/estimated ratio so far, over the workers."""
        scale = self.measured / self.estimated if self.estimated > 0 else 1.0
        now = time.perf_counter()
        spent = {k: now - t for k, t in self.running.items()}
        work = sum(max(0.0, est * scale - spent.get(k, 0.0)) for k, est in self.left.items())
        return work / max(1, min(self.workers, len(self.left) or 1))

    def job_started(self, job: AnyJob, index: int, total: int, state: JobState) -> None:
        if state.value == "done":
            return
        self.running[id(job)] = time.perf_counter()
        self._print(f"[{index + 1}/{total}] start  {job.kind} {job.name} ({state.value}; plan estimate "
                    f"{duration(job.estimate_s)})")

    def job_finished(self, job: AnyJob, state: JobState, seconds: float) -> None:
        self.left.pop(id(job), None)
        self.finished += 1
        if state.value == "done":
            self.skipped += 1
            return
        self.running.pop(id(job), None)
        if job.estimate_s > 0:
            self.estimated, self.measured = self.estimated + job.estimate_s, self.measured + seconds
        eta = self.eta_s()
        finish = (dt.datetime.now() + dt.timedelta(seconds=eta)).strftime("%H:%M")
        ratio = f", jobs take {self.measured / self.estimated:.2f}x the plan's estimates" if self.estimated else ""
        self._print(f"[{self.finished}/{self.total}] done   {job.kind} {job.name} in {duration(seconds)} | "
                    f"{self.total - self.finished} left ({self.skipped} were already done), about "
                    f"{duration(eta)} to go (~{finish}){ratio}")


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
