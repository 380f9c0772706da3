"""Progress of the ``randmix`` commands (``train``, ``shuffle train``, ``reproduce``, ``eval``, ``verify``,
``quickstart``): Rich bars on a terminal, plain flushed lines anywhere else.

The library never prints: :func:`randmix_bench.train.train` reports through the
:class:`~randmix_bench.train.TrainReporter` protocol and :func:`randmix_bench.robustness.evaluate` through the
:class:`~randmix_bench.robustness.ProgressReporter` protocol; this module, owned by the command line, is the
console side of both. A bar is redrawn in place and shows nothing until it ends when stdout is a log file or a
pipe (a background run, CI), so there :func:`attack_progress` and :func:`status` give a :class:`PlainProgress`
and :class:`TrainProgress` prints a line per epoch and one of the steps done every few minutes instead.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from randmix_bench.cli.views import train_line
from randmix_bench.step_clock import StepClock
from randmix_bench.vocab import n_epochs

if TYPE_CHECKING:
    from randmix_bench.jobs import AnyJob, JobState

__all__ = ["TRAIN_LINE_S", "PlainProgress", "ReproduceProgress", "RichProgress", "TrainProgress", "attack_progress",
           "duration", "plain", "status"]


def duration(seconds: float) -> str:
    """``42 s``, ``7.5 min``, ``2 h 05 min``: what a person reads in a log (every duration this module prints)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


TRAIN_LINE_S = 300.0
"""Off a terminal, a training says how far into its epoch it is at most this often (an epoch of the medium tier's
unshuffler on one core is half an hour), besides its line per epoch."""


def plain(console: Console, text: str) -> None:
    """Print ``text`` as one plain line (no markup, highlighting or wrapping; Rich flushes each print), the one way
    this module writes a log line: labels such as ``[1/5]`` or entry names are never read as markup."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


class ReproduceProgress:
    """A :class:`~randmix_bench.reproduce.Reporter` that prints one plain line per job started and finished, each
    led by the job's place in the plan (``[3/5]``: with ``--jobs`` the lines of several jobs interleave) and each
    finish with the jobs left and the time left: the plan's estimates of the jobs not finished, scaled by how long
    the jobs run so far took against their estimates (jobs resumed part-way done excluded), scheduled on the
    ``workers`` running at once as reproduce hands out the groups (:func:`~randmix_bench.reproduce.time_left`);
    between them, a running job's epochs and attack batches (those at most every
    ``interval`` seconds). Plain lines, so that a run in the background (``nohup randmix reproduce ... > log``)
    writes a log a person can follow."""

    def __init__(self, console: Console, jobs: Sequence[AnyJob], workers: int = 1, interval: float = 30.0) -> None:
        self.console, self.workers, self.total, self.interval = console, workers, len(jobs), interval
        self.jobs = list(jobs)
        self.last_line: dict[int, float] = {}  # id(job) -> when its last attack line was printed
        self.left = {id(j): j.estimate_s for j in jobs}  # not finished yet
        self.place = {id(j): i + 1 for i, j in enumerate(jobs)}  # id(job) -> its number in the plan, as it is shown
        self.running: dict[int, float] = {}  # id(job) -> when it started
        self.last_steps: dict[int, float] = {}  # id(job) -> when its last steps line (or epoch line) was printed
        self.resumed: set[int] = set()  # jobs that started partly done: their time says nothing of the estimates
        self.trained: dict[int, float] = {}  # id(job) -> the fraction of a running training's steps done
        self.skipped: set[int] = set()  # jobs found done, at the start or at their turn: out of `left`
        self.estimated = self.measured = 0.0  # over the jobs that ran from the start

    def eta_s(self) -> float:
        """Seconds left: estimates not yet finished (for a running training that reports its steps here, as
        with ``--jobs``, the share of its steps left; for another running job, less the time it has run), times
        the measured/estimated ratio so far, scheduled on the workers group by group. By steps, a training
        resumed near its end counts as nearly done (its test evaluation after the last step counts as nothing)."""
        from randmix_bench.reproduce import time_left

        scale = self.measured / self.estimated if self.estimated > 0 else 1.0
        now = time.perf_counter()

        def remaining(job: AnyJob) -> float:
            if id(job) not in self.left:
                return 0.0
            if id(job) in self.trained:
                return self.left[id(job)] * scale * (1.0 - self.trained[id(job)])
            return max(0.0, self.left[id(job)] * scale - now + self.running.get(id(job), now))

        return time_left([(job, remaining(job), id(job) in self.running) for job in self.jobs], self.workers)

    def jobs_done(self, jobs: Sequence[AnyJob]) -> None:
        for job in jobs:
            self._skip(job)

    def job_started(self, job: AnyJob, index: int, total: int, state: JobState) -> None:
        if state.value == "done":
            return
        if id(job) in self.skipped:  # done at the start, redone now (its training was redone with --force)
            self.skipped.discard(id(job))
            self.left[id(job)] = job.estimate_s
        self.running[id(job)] = time.perf_counter()
        if state.value == "partial":
            self.resumed.add(id(job))
        plain(self.console, f"[{index + 1}/{total}] start  {job.kind} {job.name} ({state.value}; plan estimate "
                    f"{duration(job.estimate_s)})")

    def job_finished(self, job: AnyJob, state: JobState, seconds: float) -> None:
        if state.value == "done":
            self._skip(job)  # no line: a skipped job is news to no one
            return
        self.left.pop(id(job), None)
        self.running.pop(id(job), None)
        self.trained.pop(id(job), None)
        if job.estimate_s > 0 and id(job) not in self.resumed:
            self.estimated, self.measured = self.estimated + job.estimate_s, self.measured + seconds
        eta = self.eta_s()
        finish = (dt.datetime.now() + dt.timedelta(seconds=eta)).strftime("%H:%M")
        ratio = f", jobs take {self.measured / self.estimated:.2f}x the plan's estimates" if self.estimated else ""
        plain(self.console, f"[{self.place[id(job)]}/{self.total}] done   {job.kind} {job.name} in "
                    f"{duration(seconds)} | {len(self.left)} left ({len(self.skipped)} were already done), "
                    f"about {duration(eta)} to go (~{finish}){ratio}")

    def _skip(self, job: AnyJob) -> None:
        """``job`` was found done: out of the work left (a job done when the run began is reported at the start
        and again when its turn comes; sets make the second report a no-op)."""
        self.left.pop(id(job), None)
        self.skipped.add(id(job))

    def job_epoch(self, job: AnyJob, index: int, epoch: int, epochs: int, loss: float) -> None:
        self.last_steps[id(job)], self.trained[id(job)] = time.monotonic(), epoch / epochs
        plain(self.console, f"[{index + 1}/{self.total}] {job.kind} {job.name}: epoch {epoch}/{epochs}, loss "
                            f"{loss:.4f}{self._elapsed(job)}")

    def job_steps(self, job: AnyJob, index: int, epoch: int, epochs: int, step: int, steps: int) -> None:
        """A line at most every :data:`TRAIN_LINE_S` seconds per job (counted from its start or its last epoch)."""
        self.trained[id(job)] = (epoch - 1 + step / max(steps, 1)) / epochs
        now = time.monotonic()
        if now - self.last_steps.setdefault(id(job), now) < TRAIN_LINE_S:
            return
        self.last_steps[id(job)] = now
        plain(self.console, f"[{index + 1}/{self.total}] {job.kind} {job.name}: epoch {epoch}/{epochs}, step "
                            f"{step}/{steps}{self._elapsed(job)}")

    def job_attack(self, job: AnyJob, index: int, label: str, done: int, total: int, robust_acc: float) -> None:
        """A line per batch, at most one per ``interval`` seconds and job but always an attack's last (batches
        replayed from a resume state arrive at once)."""
        now = time.monotonic()
        if done < total and now - self.last_line.get(id(job), -math.inf) < self.interval:
            return
        self.last_line[id(job)] = now
        plain(self.console, f"[{index + 1}/{self.total}] {job.kind} {job.name}: {label} {done}/{total} points, "
                            f"robust acc {100 * robust_acc:.2f}%{self._elapsed(job)}")

    def _elapsed(self, job: AnyJob) -> str:
        began = self.running.get(id(job))
        return "" if began is None else f" ({duration(time.perf_counter() - began)} into the job)"


class TrainProgress:
    """A :class:`~randmix_bench.train.TrainReporter` on a console: a bar over every step with the epoch, last
    loss, lr and speed (on a terminal only; elsewhere a line of the steps done at most every ``interval`` seconds);
    a line when training starts and per epoch, with the time elapsed; the finished run in one line. One reporter
    serves run after run; ``first_line`` (e.g. which data the run uses) is printed once, when the first run starts,
    so that bad input still prints nothing but its error."""

    def __init__(self, console: Console, first_line: str | None = None, interval: float = TRAIN_LINE_S) -> None:
        self.console, self.first_line, self.interval = console, first_line, interval
        self.began = time.monotonic()
        self.epochs, self.clock = 0, StepClock()
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
        self.began, self.epochs = time.monotonic(), epochs
        self.clock.start(steps, epochs_done)
        if self.first_line is not None:
            plain(self.console, self.first_line)
            self.first_line = None
        resumed = f", resumed after {epochs_done}" if epochs_done else ""
        plain(self.console, f"training: {n_epochs(epochs)} of {steps} steps{resumed}")
        if self.console.is_terminal:
            self.progress.start()
        self.task = self.progress.add_task("train", total=steps * epochs, completed=steps * epochs_done,
                                           epoch=f"{epochs_done}/{epochs}", loss="-", lr="-", ips="-")

    def step(self, lr: float) -> None:
        self.progress.update(self.task, advance=1, lr=f"{lr:.4g}")
        reached = self.clock.tick(self.interval)
        if reached is not None and not self.console.is_terminal:
            epoch, step = reached
            plain(self.console, f"epoch {epoch}/{self.epochs}: step {step}/{self.clock.per_epoch}  lr {lr:.4g}  "
                                f"(elapsed {duration(time.monotonic() - self.began)})")

    def epoch(self, record: dict[str, Any], epochs: int) -> None:
        self.clock.rest()
        done, loss, ips = f"{record['epoch']}/{epochs}", record["train_loss"], record["images_per_s"]
        self.progress.update(self.task, epoch=done, loss=f"{loss:.4f}", ips=f"{ips:,.0f}")
        plain(self.console, f"epoch {done}  loss {loss:.4f}  lr {record['lr']:.4g}  {ips:,.0f} img/s  "
                            f"{record['seconds']:.1f} s  (elapsed {duration(time.monotonic() - self.began)})")

    def stop(self) -> None:
        """Leave the last bar on screen; the next run draws its own."""
        if self.progress.live.is_started:
            self.progress.stop()
        self.progress.remove_task(self.task)

    def finished(self, summary: dict[str, Any], out: Path) -> None:
        plain(self.console, train_line(summary, out))


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
    """The attacks' progress as :func:`plain` lines, for a console that is not a terminal: a
    :class:`~randmix_bench.robustness.ProgressReporter` that prints a line when an attack starts, then points done,
    robust accuracy and time elapsed, at most every ``interval`` seconds and when it ends."""

    def __init__(self, console: Console, interval: float = 10.0) -> None:
        self.console, self.interval = console, interval
        self.label, self.total, self.done, self.began, self.last = "", 0, 0, 0.0, 0.0

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.began = self.last = time.monotonic()
        plain(self.console, f"{label}: {total} point(s) to attack")

    def advance(self, points: int, robust_acc: float) -> None:
        self.done += points
        now = time.monotonic()
        if self.done >= self.total or now - self.last >= self.interval:
            self.last = now
            plain(self.console, f"{self.label}: {self.done}/{self.total} points, robust acc {100 * robust_acc:.2f}%, "
                                f"{duration(now - self.began)}")


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
        yield partial(plain, console)
