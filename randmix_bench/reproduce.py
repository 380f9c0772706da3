"""``randmix reproduce``: a tier's plan run as jobs that are skipped when done and resumed when killed.

Every job writes what the ordinary commands write: a training run (``runs/<tier>/<name>/``, whose
checkpoint is then published as ``leaderboards/checkpoints/<tier>/<name>.safetensors``), a ``randmix
eval`` result, a ``randmix shuffle eval`` result, the leaderboard Markdown. A job's state is read from
its outputs alone, so a fresh clone with the committed results finds every job done:

- ``done``: the output exists and records the job's settings; skipped;
- ``partial``: a killed run (the trainer's ``resume.pt``) or evaluation (the harness's ``.eval-state``);
  continued by the trainer's and harness's own resume;
- ``changed``: the output exists with other settings; refused unless ``force``;
- ``pending``: nothing yet.

``shard=(i, n)`` gives a process a fixed, disjoint share of the jobs: a training run and every job that
needs it stay together, and the leaderboard job runs only unsharded (after the shards are merged).

``workers=N`` runs the job groups (a training run and what needs it) in N processes at once, each taking the
next group when it finishes one, with ``threads`` torch threads each; the leaderboard job runs last, in the
calling process. Resume and locking are the trainer's and the harness's, as for one process.
"""

from __future__ import annotations

import fnmatch
import multiprocessing
import queue
import shutil
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from randmix_bench.checkpoint import read_checkpoint
from randmix_bench.device import resolve_device
from randmix_bench.errors import RandmixError
from randmix_bench.files import atomic_path, sha256
from randmix_bench.plans import TIERS, ShuffleStudy, Study, Tier
from randmix_bench.recipes import RUNTIME_FIELDS, TrainConfig, get_recipe
from randmix_bench.vocab import TaskKind

if TYPE_CHECKING:
    from randmix_bench.results import CheckpointRef, Result
    from randmix_bench.robustness import EvalOptions
    from randmix_bench.train import TrainReporter

__all__ = ["JobState", "TrainJob", "EvalJob", "ShuffleEvalJob", "LeaderboardJob", "Paths", "plan", "select",
           "parse_shard", "parse_jobs", "run", "Reporter"]


class JobState(str, Enum):
    DONE = "done"
    PARTIAL = "partial"
    CHANGED = "changed"
    PENDING = "pending"


@dataclass(frozen=True)
class Paths:
    """Where a tier's jobs read and write, relative to the project root."""

    root: Path = Path(".")

    @property
    def leaderboards(self) -> Path:
        return self.root / "leaderboards"

    def run_dir(self, tier: Tier, name: str) -> Path:
        return self.root / "runs" / tier.value / name

    def checkpoint(self, tier: Tier, name: str) -> Path:
        return self.leaderboards / "checkpoints" / tier.value / f"{name}.safetensors"


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A training config without the fields that may differ between machines (see RUNTIME_FIELDS)."""
    return {k: v for k, v in config.items() if k not in RUNTIME_FIELDS}


@dataclass(frozen=True)
class TrainJob:
    name: str
    group: str
    tier: Tier
    config: TrainConfig  # task included (a pixel-shuffle run's loss and permutation seed)
    estimate_s: float = 0.0
    kind: str = "train"

    def state(self, paths: Paths) -> JobState:
        """Done when the published checkpoint's config is this job's; checkpoints written before the config
        carried its task are read in the current layout (``read_checkpoint`` completes them)."""
        published = paths.checkpoint(self.tier, self.name)
        if published.is_file():
            _, meta = read_checkpoint(published)
            saved = _comparable(meta["extra"].get("train", {}))
            return JobState.DONE if saved == _comparable(self.config.to_dict()) else JobState.CHANGED
        return JobState.PARTIAL if (paths.run_dir(self.tier, self.name) / "resume.pt").is_file() else JobState.PENDING

    def run(self, paths: Paths, device: str | None, force: bool, training: TrainReporter | None) -> None:
        from randmix_bench.checkpoint import CHECKPOINT_NAME
        from randmix_bench.train import train

        out = paths.run_dir(self.tier, self.name)
        partial = (out / "resume.pt").is_file()
        train(self.config, out, resume=partial and not force, force=force or not partial, device=device,
              reporter=training)
        with atomic_path(paths.checkpoint(self.tier, self.name)) as tmp:
            shutil.copyfile(out / CHECKPOINT_NAME, tmp)


@dataclass(frozen=True)
class EvalJob:
    """A ``randmix eval`` of a TrainJob's checkpoint. ``attacks`` empty: AutoAttack standard; ``("none",)``: clean
    accuracy only; else AutoAttack custom with these attacks."""

    name: str  # also the result's entry name: the run's name and the threat model
    group: str
    checkpoint: str  # the TrainJob's name
    tier: Tier
    dataset: str
    norm: str
    eps: str
    n_examples: int
    sweep: tuple[str, ...] = ()
    square_queries: int | None = None
    estimate_s: float = 0.0
    attacks: tuple[str, ...] = ()
    sweep_attacks: tuple[str, ...] = ()
    n_queries: int | None = None  # Square's budget with a custom set
    transfer_from: str | None = None  # a TrainJob's name: attacks made on its checkpoint (attacks ("transfer",))
    batch_size: int | None = None  # points per attack batch; None: all n_examples in one
    sanity: bool = True  # the gradient-masking checks every ranked number comes with (not for controls)
    kind: str = "eval"

    def output(self, paths: Paths) -> Path:
        from randmix_bench.robustness import default_output

        return default_output(self.dataset, self.norm, self.name, paths.leaderboards)

    def options(self, paths: Paths, device: str | None = None) -> EvalOptions:
        """The evaluation's settings; the attack batch is fixed by the plan (by default the whole set of points), so
        that the outcomes never depend on a default batch size (AutoAttack seeds each batch)."""
        from randmix_bench.robustness import EvalOptions, SanityOptions

        named = self.attacks in (("none",), ("transfer",))
        attack = {"attack": self.attacks[0]} if named else {"version": "custom", "attacks": self.attacks} \
            if self.attacks else {}
        source = None if self.transfer_from is None else paths.checkpoint(self.tier, self.transfer_from)
        return EvalOptions(**attack, norm=self.norm, eps=self.eps, n_examples=self.n_examples,
                           batch_size=min(self.batch_size or self.n_examples, self.n_examples), sweep=self.sweep,
                           sweep_attacks=self.sweep_attacks,
                           n_queries=self.n_queries, transfer_from=source,
                           sanity=SanityOptions(square_queries=self.square_queries) if self.sanity else None,
                           device=device or EvalOptions.device, name=self.name, out=self.output(paths))

    def state(self, paths: Paths) -> JobState:
        """Done when the result is valid (every number agrees with its twin: see results.RandmixBlock), was made
        with this job's settings, of this checkpoint, and labels it as the checkpoint's own record does; a result
        edited by hand so that its numbers disagree, or relabelled, is ``changed`` (redone with --force). A
        consistent edit of every twin at once is what ``randmix verify`` catches: it re-derives them."""
        from randmix_bench.result_files import ResultError, read_result

        out = self.output(paths)
        if out.is_file():
            try:
                result = read_result(out)
            except ResultError:
                return JobState.CHANGED
            done = self._matches(paths, result) and result.randmix.points is not None  # type: ignore[union-attr]
            return JobState.DONE if done else JobState.CHANGED
        return JobState.PARTIAL if out.with_suffix(".eval-state").is_file() else JobState.PENDING

    def _matches(self, paths: Paths, result: Result) -> bool:
        """Whether ``result`` records this job's settings and checkpoint, labelled as the checkpoint's own record
        says (per-point outcomes aside)."""
        from randmix_bench.checkpoint import record_labels
        from randmix_bench.results import RobustnessResult

        if not isinstance(result, RobustnessResult):
            return False
        rb, ckpt = result.randmix, paths.checkpoint(self.tier, self.checkpoint)
        options = self.options(paths)
        expected = options.attack_config(options.resolved_eps()[1])
        sweep_attacks = [p.attacks for p in rb.sweep if p.attacks is not None]
        if rb.attack.source is not None and options.transfer_from is not None:
            expected = expected.model_copy(update={"source": rb.attack.source})
        return (rb.attack == expected and rb.n_examples == self.n_examples and result.eps == self.eps
                and [p.eps for p in rb.sweep] == list(self.sweep)
                and all(a == list(self.sweep_attacks) for a in sweep_attacks)
                and (rb.sanity is not None) == (options.sanity is not None)
                and _same_checkpoint(rb.checkpoint, ckpt)
                and {"model": rb.model, "mixing": str(rb.mixing), "train_seed": rb.train_seed,
                     "train_recipe": rb.train_recipe, "train_epochs": rb.train_epochs}
                == record_labels(read_checkpoint(ckpt)[1]))

    def run(self, paths: Paths, device: str | None, force: bool, training: TrainReporter | None) -> None:
        """Evaluate; a result that only lacks per-point outcomes (written before they were recorded) gets them by
        re-attacking its main eps alone, its sweep and sanity report kept (robustness.add_points)."""
        from randmix_bench.result_files import read_result
        from randmix_bench.robustness import add_points, evaluate

        out, command = self.output(paths), f"randmix reproduce --tier {self.tier.value}"
        checkpoint, options = paths.checkpoint(self.tier, self.checkpoint), self.options(paths, device)
        if force and out.is_file() and self._matches(paths, earlier := read_result(out)) \
                and earlier.randmix.points is None:  # type: ignore[union-attr]
            add_points(checkpoint, self.dataset, options, command=command)
        else:
            evaluate(checkpoint, self.dataset, options, force=force, command=command)


@dataclass(frozen=True)
class ShuffleEvalJob:
    name: str
    group: str
    tier: Tier
    runs: tuple[str, ...]  # TrainJob names, one grid row each
    dataset: str
    estimate_s: float = 0.0
    kind: str = "shuffle-eval"

    def out_dir(self, paths: Paths) -> Path:
        return paths.leaderboards / self.dataset / "shuffle"

    def state(self, paths: Paths) -> JobState:
        from randmix_bench.result_files import ResultError, read_result
        from randmix_bench.results import ShuffleResult

        outputs = [self.out_dir(paths) / f"{run}.json" for run in self.runs]
        if not any(p.is_file() for p in outputs):
            return JobState.PENDING
        for run, path in zip(self.runs, outputs, strict=True):
            ckpt = paths.checkpoint(self.tier, run)
            try:
                result = read_result(path) if path.is_file() else None
            except ResultError:  # edited by hand into an invalid file: redone with --force
                return JobState.CHANGED
            if not (isinstance(result, ShuffleResult) and ckpt.is_file() and result.checkpoint.sha256 == sha256(ckpt)):
                return JobState.CHANGED
        return JobState.DONE

    def run(self, paths: Paths, device: str | None, force: bool, training: TrainReporter | None) -> None:
        from randmix_bench.shuffle import evaluate_runs

        # force: its outputs are this job's alone, and a changed one was refused before
        evaluate_runs([paths.checkpoint(self.tier, run) for run in self.runs], self.out_dir(paths), device=device,
                      grid_name=f"{self.name}.png", force=True)


@dataclass(frozen=True)
class LeaderboardJob:
    name: str = "leaderboard"
    group: str = "leaderboard"
    estimate_s: float = 5.0
    kind: str = "leaderboard"

    def state(self, paths: Paths) -> JobState:
        from randmix_bench import leaderboard

        if not paths.leaderboards.is_dir():
            return JobState.PENDING
        return JobState.PENDING if leaderboard.stale(paths.leaderboards, paths.root / "README.md") else JobState.DONE

    def run(self, paths: Paths, device: str | None, force: bool, training: TrainReporter | None) -> None:
        from randmix_bench import leaderboard

        leaderboard.write(paths.leaderboards, paths.root / "README.md")


def _same_checkpoint(ref: CheckpointRef, ckpt: Path) -> bool:
    """Whether a result's checkpoint reference names the weights in ``ckpt`` (by their digest when recorded)."""
    from randmix_bench.checkpoint import weights_digest

    if not ckpt.is_file():
        return False
    if ref.weights_sha256 is None:
        return ref.sha256 == sha256(ckpt)
    return ref.weights_sha256 == weights_digest(read_checkpoint(ckpt)[0])


AnyJob = TrainJob | EvalJob | ShuffleEvalJob | LeaderboardJob


def _study_jobs(tier: Tier, study: Study) -> list[AnyJob]:
    jobs: list[AnyJob] = []
    recipe = get_recipe(study.recipe, TaskKind.CLASSIFICATION)
    if study.epochs is not None:
        recipe = recipe.override(epochs=study.epochs)
    # seed-major: every variant's first seed before any second one, so that a tier cut short compares variants
    later: list[AnyJob] = []
    runs = [(variant, i, seed) for variant in study.variants for i, seed in enumerate(study.seeds_of(variant))]
    for variant, i, seed in sorted(runs, key=lambda r: r[1]):
        run = f"{tier.value}-{study.key}-{variant}-s{seed}"
        cfg = recipe.override(dataset=study.dataset, mixing=variant, seed=seed)
        jobs.append(TrainJob(run, run, tier, cfg, estimate_s=study.train_s))
        first = i == 0
        if variant in study.clean_only:
            jobs.append(EvalJob(f"{run}-clean", run, run, tier, study.dataset, "Linf", study.eps,
                                study.n_examples, attacks=("none",), sanity=False, batch_size=study.attack_batch,
                                estimate_s=5))
            continue
        swept = first or study.sweep_every_seed
        jobs.append(EvalJob(f"{run}-linf", run, run, tier, study.dataset, "Linf", study.eps, study.n_examples,
                            sweep=study.sweep if swept else (), square_queries=study.square_queries,
                            attacks=study.attacks, sweep_attacks=study.sweep_attacks if swept else (),
                            batch_size=study.attack_batch, estimate_s=study.eval_s + study.sweep_s * swept))
        if first and study.standard_n is not None:  # after every seed's headline: the costly cross-check
            later.append(EvalJob(f"{run}-linf-aa{study.standard_n}", run, run, tier, study.dataset, "Linf",
                                study.eps, study.standard_n, square_queries=study.square_queries,
                                estimate_s=study.standard_s))
        if study.transfer and variant != "full" and "full" in study.variants and seed in study.seeds_of("full"):
            later.append(EvalJob(f"{run}-linf-transfer", run, run, tier, study.dataset, "Linf", study.eps,
                                 study.n_examples, attacks=("transfer",), sanity=False,
                                 transfer_from=f"{tier.value}-{study.key}-full-s{seed}", batch_size=study.attack_batch,
                                 estimate_s=study.control_s))
        if first and study.square_n is not None:
            later.append(EvalJob(f"{run}-linf-square{study.square_control_queries}", run, run, tier, study.dataset,
                                 "Linf", study.eps, study.square_n, attacks=("square",), sanity=False,
                                 n_queries=study.square_control_queries, batch_size=study.attack_batch,
                                 estimate_s=study.control_s))
        if first and study.l2_eps is not None:
            jobs.append(EvalJob(f"{run}-l2", run, run, tier, study.dataset, "L2", study.l2_eps, study.n_examples,
                                square_queries=study.square_queries, estimate_s=study.eval_s))
    return jobs + later


def _shuffle_jobs(tier: Tier, study: ShuffleStudy) -> list[AnyJob]:
    recipe = get_recipe(study.recipe, TaskKind.SHUFFLE)
    if study.epochs is not None:
        recipe = recipe.override(epochs=study.epochs)
    group = f"{tier.value}-{study.key}"
    jobs: list[AnyJob] = []
    for seed in study.seeds:
        runs = tuple(f"{group}-{variant}-s{seed}" for variant in study.variants)
        for run, variant in zip(runs, study.variants, strict=True):
            cfg = recipe.override(dataset=study.dataset, mixing=variant, seed=seed,
                                  permutation_seed=study.permutation_seed)
            jobs.append(TrainJob(run, group, tier, cfg, estimate_s=study.train_s))
        jobs.append(ShuffleEvalJob(f"{group}-eval-s{seed}", group, tier, runs, study.dataset,
                                   estimate_s=study.eval_s))
    return jobs


def plan(tier: Tier) -> list[AnyJob]:
    """Every job of ``tier`` in the order it runs: studies as listed, then the leaderboard."""
    jobs: list[AnyJob] = []
    for study in TIERS[tier]:
        jobs += _shuffle_jobs(tier, study) if isinstance(study, ShuffleStudy) else _study_jobs(tier, study)
    names = [f"{j.kind}:{j.name}" for j in jobs]
    if len(set(names)) != len(names):
        raise AssertionError(f"tier {tier.value} names a job twice")  # a plan bug, not user input
    return jobs + [LeaderboardJob()]


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
    mine = {g for k, g in enumerate(groups) if k % n == i - 1}
    return [j for j in chosen if j.group in mine]


class Reporter(Protocol):
    """Where :func:`run` reports: the CLI draws the overview, tests record the calls."""

    def job_started(self, job: AnyJob, index: int, total: int, state: JobState) -> None: ...

    def job_finished(self, job: AnyJob, state: JobState, seconds: float) -> None: ...


@dataclass
class Outcome:
    job: AnyJob
    before: JobState  # its state when its turn came
    seconds: float = 0.0
    ran: bool = False


def run(jobs: Sequence[AnyJob], paths: Paths, device: str | None = None, force: bool = False,
        reporter: Reporter | None = None, training: TrainReporter | None = None, workers: int = 1,
        threads: int | None = None) -> list[Outcome]:
    """Run every job not done yet, in order, reporting each to ``reporter`` and each training to ``training``.
    A ``changed`` job anywhere is refused before any work unless ``force``. Each job's state is read again when its
    turn comes: earlier jobs change later ones' inputs. A device that cannot run here is refused first, even when
    every job is done, so that a typo never passes silently.

    With ``workers`` > 1 the groups run in that many processes (``threads`` torch threads each; trainings
    report nothing to ``training`` there) and the outcomes are returned in plan order all the same."""
    if workers < 1:
        raise RandmixError(f"jobs must be >= 1, got {workers}")
    if device is not None:
        resolve_device(device)
    changed = [f"{j.kind}:{j.name}" for j in jobs if j.kind != "leaderboard" and j.state(paths) is JobState.CHANGED]
    if changed and not force:
        raise RandmixError(f"{len(changed)} job(s) have outputs made with other settings ({', '.join(changed[:3])}"
                           f"{' ...' if len(changed) > 3 else ''}); pass --force to redo them")
    outcomes = [Outcome(job, JobState.PENDING) for job in jobs]
    work = {j.group for j in jobs if j.kind != "leaderboard" and j.state(paths) is not JobState.DONE}
    parallel = [i for i, j in enumerate(jobs) if j.kind != "leaderboard" and j.group in work]
    if workers > 1 and len(work) > 1:
        _run_parallel(jobs, parallel, outcomes, paths, device, force, reporter, workers, threads)
    else:
        parallel = []
    for index in range(len(jobs)):  # the rest in order: jobs already done, the leaderboard last
        if index not in parallel:
            _run_one(jobs, index, outcomes[index], paths, device, force, reporter, training)
    return outcomes


def _run_one(jobs: Sequence[AnyJob], index: int, outcome: Outcome, paths: Paths, device: str | None, force: bool,
             reporter: Reporter | None, training: TrainReporter | None) -> None:
    job = jobs[index]
    outcome.before = state = job.state(paths)
    if reporter:
        reporter.job_started(job, index, len(jobs), state)
    if state is not JobState.DONE:
        began = time.perf_counter()
        # --force redoes what it must: a changed output, and a partial one whose state cannot be continued
        job.run(paths, device, force and state in (JobState.CHANGED, JobState.PARTIAL), training)
        outcome.seconds, outcome.ran = time.perf_counter() - began, True
    if reporter:
        reporter.job_finished(job, state, outcome.seconds)


# ------------------------------------------------------------------------------------------ parallel groups


def _worker(groups: Any, events: Any, jobs: Sequence[AnyJob], paths: Paths, device: str | None, force: bool,
            threads: int | None) -> None:
    """One worker process: take groups (lists of job indices) until none is left, report every job as an event."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    while True:
        try:
            group = groups.get_nowait()
        except queue.Empty:
            return
        for index in group:
            outcome = Outcome(jobs[index], JobState.PENDING)
            try:
                _run_one(jobs, index, outcome, paths, device, force, _Events(events, index), None)
            except RandmixError as e:
                events.put(("failed", index, str(e), True))
                return
            except BaseException:  # noqa: BLE001  (the parent re-raises it with this traceback)
                events.put(("failed", index, traceback.format_exc(), False))
                return
            events.put(("outcome", index, outcome.before.value, outcome.seconds, outcome.ran))


@dataclass
class _Events:
    """A :class:`Reporter` in a worker: forwards ``job_started`` to the parent, which reports it in order."""

    events: Any
    index: int

    def job_started(self, job: AnyJob, index: int, total: int, state: JobState) -> None:
        self.events.put(("started", self.index, state.value))

    def job_finished(self, job: AnyJob, state: JobState, seconds: float) -> None:
        pass  # sent with the outcome


def _run_parallel(jobs: Sequence[AnyJob], indices: list[int], outcomes: list[Outcome], paths: Paths,
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
    for p in processes:
        p.start()
    left, failure = len(indices), None
    try:
        while left and failure is None:
            try:
                event = events.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in processes):
                    failure = ("a worker process died without a report (out of memory?); rerun to resume", True)
                continue
            kind, index = event[0], event[1]
            job = jobs[index]
            if kind == "started":
                outcomes[index].before = JobState(event[2])
                if reporter:
                    reporter.job_started(job, index, len(jobs), outcomes[index].before)
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
