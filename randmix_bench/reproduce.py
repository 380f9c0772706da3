"""``randmix reproduce``: a tier's jobs (:mod:`randmix_bench.jobs`) run, skipped when done and resumed when killed.

A job's state is read from its outputs when its turn comes (``done`` jobs are skipped, ``partial`` ones
continued by the trainer's and harness's own resume, ``changed`` ones refused unless ``force``).

``shard=(i, n)`` gives a process a fixed, disjoint share of the jobs: a training run and every job that
needs it stay together; the jobs that read another group's checkpoint (transfer attacks) and the leaderboard job
run only unsharded (after the shards are merged).

``workers=N`` runs the job groups (a training run and what needs it) in N processes at once, each taking the
next group when it finishes one, with ``threads`` torch threads each; then, the same way, the jobs that read
another group's checkpoint; the leaderboard job runs last, in the calling process. Resume and locking are the
trainer's and the harness's, as for one process.
"""

from __future__ import annotations

import fnmatch
import heapq
import multiprocessing
import queue
import signal
import time
import traceback
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from randmix_bench.allocator import keep_freed_memory
from randmix_bench.device import resolve_device
from randmix_bench.errors import RandmixError
from randmix_bench.jobs import AnyJob, EvalJob, JobState, Paths, reads_other_group
from randmix_bench.step_clock import StepClock
from randmix_bench.threads import cpu_threads

if TYPE_CHECKING:
    from randmix_bench.train import TrainReporter

__all__ = ["STEP_EVENT_S", "select", "parse_shard", "parse_jobs", "makespan", "time_left", "run", "Reporter", "JobRun"]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` (1-based, as SLURM arrays count) -> (i, N)."""
    if text is None:
        return None
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise RandmixError(f"--shard {text!r} is not i/N, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise RandmixError(f"--shard {text}: i must be in 1..N")
    return i, n


def parse_jobs(text: str | int, device: str | None) -> int:
    """``--jobs``: a count >= 1, or ``auto``: one process per CPU core this process may use on the CPU (each then
    gets one thread: cheaper than two threads on one job, whose ops do not scale 2x), one on a GPU."""
    from randmix_bench.threads import available_cores

    value = str(text).strip().lower()
    if value == "auto":
        return 1 if resolve_device(device or "auto").type != "cpu" else available_cores()
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise RandmixError(f"--jobs must be auto or a count in 1..256, got {text}")
    return n


def select(jobs: Sequence[AnyJob], only: Sequence[str] = (), shard: tuple[int, int] | None = None) -> list[AnyJob]:
    """The jobs matching any ``only`` glob (on ``kind:name`` or ``name``), then this shard's share of them."""
    chosen = [j for j in jobs if not only or any(fnmatch.fnmatchcase(f"{j.kind}:{j.name}", p)
                                                  or fnmatch.fnmatchcase(j.name, p) for p in only)]
    if only and not chosen:
        raise RandmixError(f"--only {', '.join(only)} matches no job; see `randmix reproduce --dry-run`")
    if shard is None:
        return chosen
    i, n = shard
    groups = list(dict.fromkeys(j.group for j in chosen if j.kind != "leaderboard"))
    if n > len(groups):  # a shard would be empty: a SLURM array larger than the work is a mistake, said at once
        raise RandmixError(f"--shard {i}/{n}: the selected jobs form only {len(groups)} group(s) (a training run with "
                           f"its evaluations), so N must be at most {len(groups)}")
    mine = {g for k, g in enumerate(groups) if k % n == i - 1}
    share = [j for j in chosen if j.group in mine and not reads_other_group(j)]  # those: by the unsharded run
    if not share:
        raise RandmixError(f"--shard {i}/{n}: the selected jobs in this share read another run's checkpoint "
                           "(transfer attacks), which only an unsharded run does: run them without --shard")
    return share


def makespan(work: Sequence[tuple[str, float]], workers: int, running: Collection[str] = ()) -> float:
    """Seconds until ``workers`` processes have done ``work`` (``(group, seconds left)`` per job, in plan order)
    taking the groups as :func:`run` hands them out: the ``running`` groups first, one per worker, then each worker
    the next group in plan order as it frees up. One worker: the sum. A long group late in the plan keeps one worker
    busy after the other has finished: the work divided by ``workers`` would promise too little."""
    per_group: dict[str, float] = {}
    for group, seconds in work:
        per_group[group] = per_group.get(group, 0.0) + seconds
    free = [s for g, s in per_group.items() if g in running]
    free += [0.0] * max(0, max(1, workers) - len(free))
    heapq.heapify(free)
    for group, seconds in per_group.items():
        if group not in running:
            heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free, default=0.0)


def _phase(job: AnyJob) -> int:
    """When :func:`run` with workers runs ``job``: 0 with its group, 1 once every group is done (it reads another
    group's checkpoint), 2 last, in the calling process (the leaderboard)."""
    return 2 if job.kind == "leaderboard" else int(reads_other_group(job))


def time_left(work: Sequence[tuple[AnyJob, float, bool]], workers: int) -> float:
    """Seconds until :func:`run` is done with ``work``: ``(job, seconds left, running)`` for each job of the plan,
    in order. One worker runs the jobs one after another; more run the groups (:func:`makespan`), then the jobs that
    read another group's checkpoint, and the leaderboard last, as :func:`run` does."""
    if workers <= 1:
        return sum(seconds for _, seconds, _ in work)
    phases = [[w for w in work if _phase(w[0]) == phase] for phase in (0, 1)]
    last = sum(seconds for job, seconds, _ in work if _phase(job) == 2)
    return last + sum(makespan([(job.group, seconds) for job, seconds, _ in phase], workers,
                               {job.group for job, _, running in phase if running}) for phase in phases)


class Reporter(Protocol):
    """Where :func:`run` reports: the CLI draws the overview, tests record the calls. Besides each job's start and
    end, a running job reports its training epochs (from worker processes; one process reports them to
    ``training``) and its attacks' batches, so that a run in the background logs progress within an hour-long job."""

    def jobs_done(self, jobs: Sequence[AnyJob]) -> None:
        """The jobs already done when the run begins, before any job starts (each is reported again when its turn
        comes): a progress display counts them out of the work left from the first line on."""

    def job_started(self, job: AnyJob, index: int, total: int, state: JobState) -> None: ...

    def job_finished(self, job: AnyJob, state: JobState, seconds: float) -> None: ...

    def job_epoch(self, job: AnyJob, index: int, epoch: int, epochs: int, loss: float) -> None: ...

    def job_steps(self, job: AnyJob, index: int, epoch: int, epochs: int, step: int, steps: int) -> None:
        """A running training is ``step`` of ``steps`` steps into epoch ``epoch`` (from workers, at most every
        :data:`STEP_EVENT_S`; an epoch of a medium-tier unshuffler is half an hour)."""

    def job_attack(self, job: AnyJob, index: int, label: str, done: int, total: int, robust_acc: float) -> None: ...


@dataclass
class JobRun:
    """One job's turn in :func:`run`: its state when the turn came, and whether and how long it ran."""

    job: AnyJob
    before: JobState  # its state when its turn came
    seconds: float = 0.0
    ran: bool = False


def run(jobs: Sequence[AnyJob], paths: Paths, device: str | None = None, force: bool = False,
        reporter: Reporter | None = None, training: TrainReporter | None = None, workers: int = 1,
        threads: int | None = None) -> list[JobRun]:
    """Run every job not done yet, in order, reporting each to ``reporter`` and each training to ``training``.
    A ``changed`` job anywhere is refused before any work unless ``force``. Each job's state is read again when its
    turn comes: earlier jobs change later ones' inputs. A device that cannot run here is refused first, even when
    every job is done, so that a typo never passes silently.

    With ``workers`` > 1 the groups run in that many processes (``threads`` torch threads each; trainings
    report their epochs to ``reporter.job_epoch`` instead of ``training``), then the jobs that read another group's
    checkpoint, and the outcomes are returned in plan order all the same. Such a job whose source checkpoint is
    neither published nor trained by one of ``jobs`` is refused before any work."""
    if workers < 1:
        raise RandmixError(f"jobs must be >= 1, got {workers}")
    if device is not None:
        resolve_device(device)
    at_start = [(j, j.state(paths)) for j in jobs if j.kind != "leaderboard"]  # the leaderboard: last, whatever ran
    changed = [f"{j.kind}:{j.name}" for j, s in at_start if s is JobState.CHANGED]
    if changed and not force:
        raise RandmixError(f"{len(changed)} job(s) have outputs made with other settings ({', '.join(changed[:3])}"
                           f"{' ...' if len(changed) > 3 else ''}); pass --force to redo them")
    _check_sources(jobs, [j for j, s in at_start if s is not JobState.DONE], paths)
    outcomes = [JobRun(job, JobState.PENDING) for job in jobs]
    work = {j.group for j, s in at_start if s is not JobState.DONE}
    if reporter:
        reporter.jobs_done([j for j, s in at_start if s is JobState.DONE])
    parallel = [i for i, j in enumerate(jobs) if _phase(j) < 2 and j.group in work]
    if workers > 1 and len(work) > 1:  # the jobs reading another group's checkpoint once every group is done
        for phase in (0, 1):
            _run_parallel(jobs, [i for i in parallel if _phase(jobs[i]) == phase], outcomes, paths, device, force,
                          reporter, workers, threads)
    else:
        parallel = []
    for index in range(len(jobs)):  # the rest in order: jobs already done, the leaderboard last
        if index not in parallel:
            _run_one(jobs, index, outcomes[index], paths, device, force, reporter, training)
    return outcomes


def _check_sources(jobs: Sequence[AnyJob], left: Sequence[AnyJob], paths: Paths) -> None:
    """Refuse a job left to do that attacks with another run's checkpoint when that run is neither published nor
    among ``jobs`` (``--only`` left it out): said at once, not after hours of the other jobs."""
    trained = {j.name for j in jobs if j.kind == "train"}
    for job in left:
        if not isinstance(job, EvalJob) or job.transfer_from is None:
            continue
        source = job.transfer_from
        if source not in trained and not paths.checkpoint(job.tier, source).is_file():
            raise RandmixError(f"{job.kind} {job.name} attacks with the checkpoint of {source}, which is not trained "
                               f"yet; add --only {source} (or train it first)")


def _run_one(jobs: Sequence[AnyJob], index: int, outcome: JobRun, paths: Paths, device: str | None, force: bool,
             reporter: Reporter | None, training: TrainReporter | None) -> None:
    job = jobs[index]
    outcome.before = state = job.state(paths)
    if reporter:
        reporter.job_started(job, index, len(jobs), state)
    if state is not JobState.DONE:
        began = time.perf_counter()
        # --force redoes what it must: a changed output, and a partial one whose state cannot be continued
        attacks = None if reporter is None else _AttackReports(partial(reporter.job_attack, job, index))
        job.run(paths, device, force and state in (JobState.CHANGED, JobState.PARTIAL), training, attacks)
        outcome.seconds, outcome.ran = time.perf_counter() - began, True
    if reporter:
        reporter.job_finished(job, state, outcome.seconds)


# ------------------------------------------------------------------------------------------ parallel groups


def _worker(groups: Any, events: Any, jobs: Sequence[AnyJob], paths: Paths, device: str | None, force: bool,
            threads: int | None) -> None:
    """One worker process: take groups (lists of job indices) until the parent's ``None`` says none is left, report
    every job as an event. The get blocks: a non-blocking one raises ``Empty`` whenever the other worker holds the
    queue's read lock, and a worker that started alongside another quit at once (half the cores left idle)."""
    if multiprocessing.parent_process() is not None:  # Ctrl-C reaches the whole process group: the parent stops us
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()  # a spawned process: the CLI's policy is not inherited
    with cpu_threads(threads):
        while (group := groups.get()) is not None:
            for index in group:
                outcome, reports = JobRun(jobs[index], JobState.PENDING), _Events(events, index)
                try:
                    _run_one(jobs, index, outcome, paths, device, force, reports,
                             _TrainReports(partial(reports.job_epoch, jobs[index], index),
                                           partial(reports.job_steps, jobs[index], index)))
                except RandmixError as e:
                    events.put(("failed", index, str(e), True))
                    return
                except BaseException:  # noqa: BLE001  (the parent re-raises it with this traceback)
                    events.put(("failed", index, traceback.format_exc(), False))
                    return
                events.put(("outcome", index, outcome.before.value, outcome.seconds, outcome.ran))


@dataclass
class _Events:
    """A :class:`Reporter` in a worker: forwards ``job_started`` and a job's attack batches to the parent, which
    reports them."""

    events: Any
    index: int

    def jobs_done(self, jobs: Sequence[AnyJob]) -> None:
        pass  # the parent reported them before the workers started

    def job_started(self, job: AnyJob, index: int, total: int, state: JobState) -> None:
        self.events.put(("started", self.index, state.value))

    def job_finished(self, job: AnyJob, state: JobState, seconds: float) -> None:
        pass  # sent with the outcome

    def job_epoch(self, job: AnyJob, index: int, epoch: int, epochs: int, loss: float) -> None:
        self.events.put(("epoch", self.index, epoch, epochs, loss))

    def job_steps(self, job: AnyJob, index: int, epoch: int, epochs: int, step: int, steps: int) -> None:
        self.events.put(("steps", self.index, epoch, epochs, step, steps))

    def job_attack(self, job: AnyJob, index: int, label: str, done: int, total: int, robust_acc: float) -> None:
        self.events.put(("attack", self.index, label, done, total, robust_acc))


STEP_EVENT_S = 10.0
"""A worker sends a running training's step count at most this often (a step of a tiny model takes milliseconds: one
event per step would flood the queue); the display decides how many of them it prints."""


@dataclass
class _TrainReports:
    """A worker's :class:`~randmix_bench.train.TrainReporter`: each finished epoch as ``epoch_done(epoch, epochs,
    loss)`` and, within an epoch, the steps done as ``steps_done(epoch, epochs, step, steps)`` at most every
    :data:`STEP_EVENT_S` seconds."""

    epoch_done: Callable[[int, int, float], None]
    steps_done: Callable[[int, int, int, int], None]
    epochs: int = 0
    clock: StepClock = field(default_factory=StepClock)

    def start(self, steps: int, epochs: int, epochs_done: int) -> None:
        self.epochs = epochs
        self.clock.start(steps, epochs_done)

    def step(self, lr: float) -> None:
        reached = self.clock.tick(STEP_EVENT_S)
        if reached is not None:
            epoch, step = reached
            self.steps_done(epoch, self.epochs, step, self.clock.per_epoch)

    def epoch(self, record: dict[str, Any], epochs: int) -> None:
        self.clock.rest()
        self.epoch_done(record["epoch"], epochs, record["train_loss"])

    def stop(self) -> None:
        pass

    def finished(self, summary: dict[str, Any], out: Path) -> None:
        pass


@dataclass
class _AttackReports:
    """A job's :class:`~randmix_bench.robustness.ProgressReporter`: each batch an attack finishes as
    ``send(label, done, total, robust_acc)``, ``done`` counting that attack's points so far."""

    send: Callable[[str, int, int, float], None]
    label: str = ""
    total: int = 0
    done: int = 0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0

    def advance(self, points: int, robust_acc: float) -> None:
        self.done += points
        self.send(self.label, self.done, self.total, robust_acc)


def _run_parallel(jobs: Sequence[AnyJob], indices: list[int], outcomes: list[JobRun], paths: Paths,
                  device: str | None, force: bool, reporter: Reporter | None, workers: int,
                  threads: int | None) -> None:
    """The groups of ``indices`` in ``workers`` spawned processes (never forked: OpenMP does not survive a fork).
    The first failure stops every worker (killed jobs resume on the next run) and is raised here."""
    context = multiprocessing.get_context("spawn")
    groups, events = context.Queue(), context.Queue()
    by_group: dict[str, list[int]] = {}
    for i in indices:
        by_group.setdefault(jobs[i].group, []).append(i)
    for group in by_group.values():
        groups.put(group)
    processes = [context.Process(target=_worker, args=(groups, events, jobs, paths, device, force, threads),
                                 daemon=True) for _ in range(min(workers, len(by_group)))]
    for _ in processes:
        groups.put(None)  # one end mark per worker
    for p in processes:
        p.start()
    left, failure = len(indices), None
    try:
        while left and failure is None:
            try:
                event = events.get(timeout=1.0)
            except queue.Empty:
                if any(p.exitcode for p in processes) or not any(p.is_alive() for p in processes):
                    failure = ("a worker process died without a report (out of memory? killed?); rerun to resume",
                               True)
                continue
            kind, index = event[0], event[1]
            job = jobs[index]
            if kind == "started":
                outcomes[index].before = JobState(event[2])
                if reporter:
                    reporter.job_started(job, index, len(jobs), outcomes[index].before)
            elif kind == "epoch":
                if reporter:
                    reporter.job_epoch(job, index, *event[2:])
            elif kind == "steps":
                if reporter:
                    reporter.job_steps(job, index, *event[2:])
            elif kind == "attack":
                if reporter:
                    reporter.job_attack(job, index, *event[2:])
            elif kind == "outcome":
                outcome = outcomes[index]
                outcome.before, outcome.seconds, outcome.ran = JobState(event[2]), event[3], event[4]
                left -= 1
                if reporter:
                    reporter.job_finished(job, outcome.before, outcome.seconds)
            else:
                failure = (f"{job.kind} {job.name}: {event[2]}" if event[3] else event[2], event[3])
    finally:
        for p in processes:
            if p.is_alive():
                p.terminate()
            p.join()
    if failure is not None:
        message, ours = failure
        if ours:
            raise RandmixError(message)
        raise RuntimeError(f"a job failed in a worker process:\n{message}")
