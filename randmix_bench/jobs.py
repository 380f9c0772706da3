"""The jobs of ``randmix reproduce``: a tier's studies (:mod:`randmix_bench.plans`) expanded into training,
evaluation and leaderboard jobs, each of which knows its outputs and reads its state from them alone.

Every job writes what the ordinary commands write: a training run (``runs/<tier>/<name>/``, whose
checkpoint is then published as ``leaderboards/checkpoints/<tier>/<name>.safetensors``), a ``randmix
eval`` result, a ``randmix shuffle eval`` result, the leaderboard Markdown. A job's state is read from
its outputs alone, so a fresh clone with the committed results finds every job done:

- ``done``: the output exists and records the job's settings; skipped;
- ``partial``: a killed run (the trainer's ``resume.pt``) or evaluation (the harness's ``.eval-state``);
  continued by the trainer's and harness's own resume;
- ``changed``: the output exists with other settings; refused unless ``force``;
- ``pending``: nothing yet.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from randmix_bench.checkpoint import read_checkpoint
from randmix_bench.files import atomic_path, sha256
from randmix_bench.plans import TIERS, ShuffleStudy, Study, Tier
from randmix_bench.recipes import RUNTIME_FIELDS, TrainConfig, get_recipe
from randmix_bench.threat import Eps, ThreatModel
from randmix_bench.vocab import AAAttack, AAVersion, Attack, Mixing, Norm, TaskKind

if TYPE_CHECKING:
    from randmix_bench.results import CheckpointRef, Result
    from randmix_bench.robustness import EvalOptions, ProgressReporter
    from randmix_bench.train import TrainReporter

__all__ = ["JobState", "Paths", "TrainJob", "EvalJob", "ShuffleEvalJob", "LeaderboardJob", "AnyJob", "tier_jobs",
           "reads_other_group"]


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

    def run(self, paths: Paths, device: str | None, force: bool, training: TrainReporter | None,
            attacks: ProgressReporter | None = None) -> None:
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
    """A ``randmix eval`` of a TrainJob's checkpoint: ``attack``, for AutoAttack with ``attacks`` as its custom set
    (empty: AutoAttack standard); ``Attack.NONE``: clean accuracy only."""

    name: str  # also the result's entry name: the run's name and the threat model
    group: str
    checkpoint: str  # the TrainJob's name
    tier: Tier
    dataset: str
    threat: ThreatModel
    n_examples: int
    sweep: tuple[Eps, ...] = ()
    square_queries: int | None = None
    estimate_s: float = 0.0
    attack: Attack = Attack.AUTOATTACK
    attacks: tuple[AAAttack, ...] = ()
    sweep_attacks: tuple[AAAttack, ...] = ()
    n_queries: int | None = None  # Square's budget with a custom set
    transfer_from: str | None = None  # a TrainJob's name: attacks made on its checkpoint (attack transfer)
    batch_size: int | None = None  # points per attack batch; None: all n_examples in one
    sanity: bool = True  # the gradient-masking checks every ranked number comes with (not for controls)
    kind: str = "eval"

    def output(self, paths: Paths) -> Path:
        from randmix_bench.robustness import default_output

        return default_output(self.dataset, self.threat.norm, self.name, paths.leaderboards)

    def options(self, paths: Paths, device: str | None = None) -> EvalOptions:
        """The evaluation's settings; the attack batch is fixed by the plan (by default the whole set of points), so
        that the outcomes never depend on a default batch size (AutoAttack seeds each batch)."""
        from randmix_bench.robustness import EvalOptions, SanityOptions

        version = AAVersion.CUSTOM if self.attacks else AAVersion.STANDARD
        source = None if self.transfer_from is None else paths.checkpoint(self.tier, self.transfer_from)
        return EvalOptions(attack=self.attack, version=version, attacks=self.attacks, threat=self.threat,
                           n_examples=self.n_examples,
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
        expected = options.attack_config()
        sweep_attacks = [p.attacks for p in rb.sweep if p.attacks is not None]
        if rb.attack.source is not None and self.transfer_from is not None:  # made on today's source weights?
            if not _same_checkpoint(rb.attack.source, paths.checkpoint(self.tier, self.transfer_from)):
                return False
            expected = expected.model_copy(update={"source": rb.attack.source})
        return (rb.attack == expected and rb.n_examples == self.n_examples and result.eps == self.threat.eps.text
                and [p.eps for p in rb.sweep] == [eps.text for eps in self.sweep]
                and all(a == list(self.sweep_attacks) for a in sweep_attacks)
                and (rb.sanity is not None) == (options.sanity is not None)
                and _same_checkpoint(rb.checkpoint, ckpt)
                and {"model": rb.model, "mixing": str(rb.mixing), "train_seed": rb.train_seed,
                     "train_recipe": rb.train_recipe, "train_epochs": rb.train_epochs}
                == record_labels(read_checkpoint(ckpt)[1]))

    def run(self, paths: Paths, device: str | None, force: bool, training: TrainReporter | None,
            attacks: ProgressReporter | None = None) -> None:
        """Evaluate; a result that only lacks per-point outcomes (written before they were recorded) gets them by
        re-attacking its main eps alone, its sweep and sanity report kept (robustness.add_points)."""
        from randmix_bench.result_files import read_result
        from randmix_bench.robustness import add_points, evaluate

        out, command = self.output(paths), f"randmix reproduce --tier {self.tier.value}"
        checkpoint, options = paths.checkpoint(self.tier, self.checkpoint), self.options(paths, device)
        if force and out.is_file() and self._matches(paths, earlier := read_result(out)) \
                and earlier.randmix.points is None:  # type: ignore[union-attr]
            add_points(checkpoint, self.dataset, options, command=command, progress=attacks)
        else:
            evaluate(checkpoint, self.dataset, options, force=force, command=command, progress=attacks)


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

    def run(self, paths: Paths, device: str | None, force: bool, training: TrainReporter | None,
            attacks: ProgressReporter | None = None) -> None:
        from randmix_bench.shuffle_eval import evaluate_runs

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

    def run(self, paths: Paths, device: str | None, force: bool, training: TrainReporter | None,
            attacks: ProgressReporter | None = None) -> None:
        from randmix_bench import leaderboard

        leaderboard.write(paths.leaderboards, paths.root / "README.md")


def reads_other_group(job: AnyJob) -> bool:
    """Whether ``job`` reads a checkpoint another group trains (a transfer attack's source model): run in parallel
    with that group, it could find the checkpoint not yet written, so ``reproduce --jobs`` runs it after them all."""
    return isinstance(job, EvalJob) and job.transfer_from not in (None, job.group)


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
        linf = ThreatModel(Norm.LINF, study.eps)
        if variant in study.clean_only:
            jobs.append(EvalJob(f"{run}-clean", run, run, tier, study.dataset, linf, study.n_examples,
                                attack=Attack.NONE, sanity=False, batch_size=study.attack_batch, estimate_s=5))
            continue
        swept = first or study.sweep_every_seed
        jobs.append(EvalJob(f"{run}-linf", run, run, tier, study.dataset, linf, study.n_examples,
                            sweep=study.sweep if swept else (), square_queries=study.square_queries,
                            attacks=study.attacks, sweep_attacks=study.sweep_attacks if swept else (),
                            batch_size=study.attack_batch, estimate_s=study.eval_s + study.sweep_s * swept))
        if first and study.standard_n is not None:  # after every seed's headline: the costly cross-check
            later.append(EvalJob(f"{run}-linf-aa{study.standard_n}", run, run, tier, study.dataset, linf,
                                 study.standard_n, square_queries=study.square_queries, estimate_s=study.standard_s))
        full = Mixing.FULL
        if study.transfer and variant is not full and full in study.variants and seed in study.seeds_of(full):
            later.append(EvalJob(f"{run}-linf-transfer", run, run, tier, study.dataset, linf, study.n_examples,
                                 attack=Attack.TRANSFER, sanity=False, batch_size=study.attack_batch,
                                 transfer_from=f"{tier.value}-{study.key}-{full}-s{seed}", estimate_s=study.control_s))
        if first and study.square_n is not None:
            later.append(EvalJob(f"{run}-linf-square{study.square_control_queries}", run, run, tier, study.dataset,
                                 linf, study.square_n, attacks=(AAAttack.SQUARE,), sanity=False,
                                 n_queries=study.square_control_queries, batch_size=study.attack_batch,
                                 estimate_s=study.control_s))
        if first and study.l2_eps is not None:
            jobs.append(EvalJob(f"{run}-l2", run, run, tier, study.dataset, ThreatModel(Norm.L2, study.l2_eps),
                                study.n_examples, square_queries=study.square_queries, estimate_s=study.eval_s))
    return jobs + later


def _shuffle_jobs(tier: Tier, study: ShuffleStudy) -> list[AnyJob]:
    recipe = get_recipe(study.recipe, TaskKind.SHUFFLE)
    if study.epochs is not None:
        recipe = recipe.override(epochs=study.epochs)
    stem = f"{tier.value}-{study.key}"
    jobs: list[AnyJob] = []
    for seed in study.seeds:  # one group per seed (its runs and their evaluation): --jobs spreads the seeds
        group, runs = f"{stem}-s{seed}", tuple(f"{stem}-{variant}-s{seed}" for variant in study.variants)
        for run, variant in zip(runs, study.variants, strict=True):
            cfg = recipe.override(dataset=study.dataset, mixing=variant, seed=seed,
                                  permutation_seed=study.permutation_seed)
            jobs.append(TrainJob(run, group, tier, cfg, estimate_s=study.train_s))
        jobs.append(ShuffleEvalJob(f"{stem}-eval-s{seed}", group, tier, runs, study.dataset,
                                   estimate_s=study.eval_s))
    return jobs


def tier_jobs(tier: Tier) -> list[AnyJob]:
    """Every job of ``tier`` in the order it runs: studies as listed, then the leaderboard."""
    jobs: list[AnyJob] = []
    for study in TIERS[tier]:
        jobs += _shuffle_jobs(tier, study) if isinstance(study, ShuffleStudy) else _study_jobs(tier, study)
    names = [f"{j.kind}:{j.name}" for j in jobs]
    if len(set(names)) != len(names):
        raise AssertionError(f"tier {tier.value} names a job twice")  # a bug in plans.py, not user input
    return jobs + [LeaderboardJob()]
