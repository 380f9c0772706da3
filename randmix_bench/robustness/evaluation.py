"""``randmix eval`` as a library call: :func:`evaluate` a checkpoint into a RobustBench ``model_info`` JSON.

Three steps a reader can follow, each a function: :func:`~randmix_bench.robustness.preparation.prepare`
validates every input and loads the model and the points (nothing written yet), :func:`run` attacks them (the
main eps, the sweep, the sanity checks) against a resume state, :func:`record` assembles the result and writes
it. :func:`evaluate` holds the result's lock around the last two, so one process writes a result.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from randmix_bench import result_files
from randmix_bench.checkpoint import digests, run_labels
from randmix_bench.errors import ExistsError, RandmixError
from randmix_bench.files import atomic_path, exclusive, png_text
from randmix_bench.freezing import count_parameters
from randmix_bench.provenance import collect
from randmix_bench.result_files import check_replaceable, read_result, write_result
from randmix_bench.results import (
    AttackConfig,
    CheckpointRef,
    Points,
    RandmixBlock,
    RobustnessResult,
    SanityReport,
    SweepPoint,
    pct,
)
from randmix_bench.robustness.attack_mode import attack_mode
from randmix_bench.robustness.checks import autoattack_flags
from randmix_bench.robustness.harness import Harness, Outcome, ProgressReporter
from randmix_bench.robustness.options import EvalOptions
from randmix_bench.robustness.preparation import Prepared, prepare
from randmix_bench.robustness.sanity import masking_flag, sanity_checks
from randmix_bench.robustness.state import EvalRecord, StateError
from randmix_bench.tasks import predict
from randmix_bench.threat import same_eps
from randmix_bench.vocab import AAVersion, Attack, Norm

__all__ = ["EvalOutput", "Measured", "evaluate", "add_points", "run", "record"]


@dataclass
class EvalOutput:
    """What :func:`evaluate` wrote, for its caller to report (the CLI's table)."""

    result: RobustnessResult
    path: Path  # the JSON written
    curve: Path | None  # the robustness-curve PNG, with --sweep
    resumed: bool  # continued a partial evaluation


def _curve_png(path: Path, sweep: list[SweepPoint], clean_acc: float, title: str, norm: Norm) -> None:
    """Robust accuracy against eps (clean accuracy at eps 0), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs, ys = [0.0] + [p.eps_value for p in sweep], [100 * clean_acc] + [100 * p.robust_acc for p in sweep]
    ax.plot(xs, ys, marker="o")
    ax.set_xticks(xs, ["0"] + [p.eps for p in sweep], rotation=45 if len(xs) > 6 else 0)
    ax.set(xlabel=f"{norm} eps", ylabel="robust accuracy (%)", ylim=(0, 100), title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={CURVE_KEY: path.name})


def _attack_label(config: AttackConfig) -> str:
    """``AutoAttack standard``, ``AutoAttack custom (apgd-ce, square)``, ``pgd``..."""
    if config.attack is not Attack.AUTOATTACK:
        return config.attack.value
    custom = config.version is AAVersion.CUSTOM
    return f"AutoAttack {config.version}" + (f" ({', '.join(config.attacks)})" if custom else "")


def _footnote(config: AttackConfig) -> str | None:
    """What ``autoattack_acc`` holds when it is not AutoAttack standard (RobustBench's meaning of the field)."""
    if config.attack is Attack.AUTOATTACK and config.version is AAVersion.STANDARD:
        return None
    if config.attack is Attack.NONE:
        return "No attack: autoattack_acc is the clean accuracy."
    return f"Robust accuracy under {_attack_label(config)}, not AutoAttack standard: an upper bound on robust accuracy."


@dataclass
class Measured:
    """What :func:`run` measured."""

    main: Outcome  # at the evaluation's eps
    sweep: list[SweepPoint]
    sanity: SanityReport | None
    attack_seconds: dict[str, float]  # "<stage> <attack>" -> seconds, summed over resumed parts
    flags: list[str]  # AutoAttack's warnings


CURVE_KEY = "randmix-curve"  # the PNG text chunk that marks a curve ``randmix eval`` drew


def _check_replaceable(job: Prepared) -> None:
    """``--force`` replaces an earlier output of this command only: the result JSON must be a valid robustness
    result (never the checkpoint being evaluated, nor any other file), the curve a PNG this command drew."""
    check_replaceable(job.out, RobustnessResult)
    curve = job.curve
    if curve is None or not (curve.exists() or curve.is_symlink()):
        return
    earlier = read_result(job.out) if job.out.is_file() else None  # a robustness result: checked just above
    named = isinstance(earlier, RobustnessResult) and earlier.randmix.curve_png == curve.name
    if not named and png_text(curve, CURVE_KEY) != curve.name:
        raise ExistsError(f"{curve} exists and is not a curve randmix eval drew; --force only replaces an earlier "
                          "output: move it away or choose another --out")


def _open_state(job: Prepared, checkpoint_sha256: str, force: bool) -> EvalRecord:
    """The resume state beside the result (``<name>.eval-state``), continued when it belongs to these
    settings; ``force`` discards one it must not continue, where it would otherwise be an error."""
    sanity = job.options.sanity
    fingerprint = {"checkpoint_sha256": checkpoint_sha256, "dataset": job.dataset, "n_examples": job.options.n_examples,
                   "attack": job.config.model_dump(mode="json"), "sweep": [t.eps.value for t in job.sweep],
                   "sweep_attacks": list(job.options.sweep_attacks),
                   "sanity": None if sanity is None else asdict(sanity)}
    path = job.out.with_suffix(".eval-state")
    try:
        return EvalRecord.open(path, fingerprint)
    except StateError:
        if not force:
            raise
        path.unlink()
        return EvalRecord.open(path, fingerprint)


def run(job: Prepared, state: EvalRecord, progress: ProgressReporter | None = None) -> Measured:
    """The attacks: at the evaluation's eps, then at each sweep eps (each starting from the points still
    robust at the eps below: broken at a smaller eps stays broken at every larger one), then the sanity
    checks; every finished batch is recorded in ``state``."""
    config = job.config
    source = None if job.source is None else job.source[1]
    with attack_mode(job.model, source), autoattack_flags(state.flags) as flags:
        harness = Harness(job.model, job.points.images, job.points.labels, device=job.device,
                          batch_size=config.batch_size, record=state, progress=progress, source=source,
                          processes=job.options.processes)
        main = harness.run(f"eps={job.threat.eps}", config, harness.clean())
        masked = masking_flag(main, config)
        if masked is not None and masked not in flags:
            flags.append(masked)
        sweep, chain = [], main.clean
        for point in job.sweep:
            point_config = job.options.sweep_config(config, point.eps)
            same = same_eps(point.eps.value, config.eps) and point_config.attacks == config.attacks
            outcome = main if same else harness.run(f"eps={point.eps}", point_config, chain)
            chain = chain & outcome.robust
            sweep.append(SweepPoint(eps=point.eps.text, eps_value=point.eps.value, robust_acc=outcome.robust_acc,
                                    attacks=None if point_config.attacks == config.attacks else point_config.attacks))
        sanity = job.options.sanity
        report = None if sanity is None else sanity_checks(harness, main, config, sanity, flags, job.threat.eps)
    return Measured(main=main, sweep=sweep, sanity=report, attack_seconds=harness.seconds, flags=list(flags))


def _full_test_clean(job: Prepared, attacked: torch.Tensor) -> torch.Tensor:
    """Clean outcomes on the whole test set: the attacked points' own (one measurement of them, not two that a
    GPU's batch-size-dependent rounding could split on a near-tie), then the rest of the test set."""
    n = len(attacked)
    rest = job.test.images[n:], job.test.labels[n:]
    return torch.cat([attacked.cpu().bool(), predict(job.model, rest[0], job.config.batch_size, job.device) == rest[1]])


def record(job: Prepared, measured: Measured, checkpoint: CheckpointRef, *, resumed: bool, began: float,
           command: str | None = None, force: bool = False) -> RobustnessResult:
    """The RobustBench ``model_info`` result with its ``randmix`` block, written (and the curve PNG with a
    sweep); ``began`` is the ``time.perf_counter()`` the evaluation started at, for its provenance. Any
    AutoAttack flag or failed sanity check marks it ``unreliable``, as RobustBench marks flagged entries."""
    model, meta, config, main = job.model, job.meta, job.config, measured.main
    trainable, frozen = count_parameters(model)
    labels = run_labels(model, meta)  # from the checkpoint's own record: verify re-derives them the same way
    whole = len(job.test) == job.options.n_examples
    full_test = None if whole else _full_test_clean(job, main.clean)
    block = RandmixBlock(
        **labels,
        dataset=Path(job.dataset).name,
        threat_model=job.threat.norm,
        eps_value=job.threat.eps.value,
        n_examples=job.options.n_examples,
        attack=config,
        clean_acc=main.clean_acc,
        robust_acc=main.robust_acc,
        per_attack_robust_acc=main.per_attack,
        clean_acc_full_test=None if full_test is None else int(full_test.sum()) / len(full_test),
        points=Points(indices=list(range(len(main.clean))), clean=main.clean.int().tolist(),
                      robust=main.robust.int().tolist()),
        full_test_clean=None if full_test is None else full_test.int().tolist(),
        params_trainable=trainable,
        params_frozen=frozen,
        checkpoint=checkpoint,
        provenance=collect(job.device, time.perf_counter() - began, command),
        sanity=measured.sanity,
        sweep=measured.sweep,
        curve_png=job.curve.name if job.curve is not None else None,
        attack_time_s={k: round(v, 3) for k, v in measured.attack_seconds.items()},
        autoattack_flags=list(measured.flags),
        resumed=resumed,
    )
    result = RobustnessResult(
        name=job.name,
        dataset=Path(job.dataset).name,
        architecture=meta["model"],
        eps=job.threat.eps.text,
        clean_acc=pct(main.clean_acc),
        autoattack_acc=pct(main.robust_acc),
        footnote=_footnote(config),
        unreliable=bool(measured.flags) or (measured.sanity is not None and not measured.sanity.passed),
        randmix=block,
    )
    if job.curve is not None:
        _curve_png(job.curve, measured.sweep, main.clean_acc, f"{job.name}: {_attack_label(config)}", config.norm)
    write_result(job.out, result, force=force)
    return result


def evaluate(checkpoint: str | Path, dataset: str, options: EvalOptions = EvalOptions(), *, force: bool = False,
             progress: ProgressReporter | None = None, command: str | None = None) -> EvalOutput:
    """``randmix eval``: evaluate a checkpoint and write its RobustBench ``model_info`` JSON, e.g.
    ``evaluate(run, "fashion-mnist", EvalOptions(threat=ThreatModel.parse("Linf", "0.1"), n_examples=500))``.

    Every input is validated before any work, and nothing is written for bad input. The result is locked for
    the whole evaluation, so a second process writing it fails at once. An existing result (or curve) is never
    overwritten without ``force``. Progress is recorded beside the result (``<name>.eval-state``) so that
    rerunning the same call after a kill continues where it stopped; the result then says ``resumed`` and its
    attack times add up every part. Any AutoAttack flag marks the result ``unreliable``, as RobustBench marks
    flagged entries."""
    began = time.perf_counter()
    job = prepare(checkpoint, dataset, options)
    with exclusive(job.out, f"the result {job.out}"):  # before any attack work: one writer per result
        for path in (job.out, job.curve):
            if path is not None and path.exists() and not force:
                raise ExistsError(f"{path} already exists; pass --force to overwrite it "
                                  "(or --name/--out for a new entry)")
        _check_replaceable(job)
        checkpoint_ref = result_files.checkpoint_ref(job.checkpoint, job.out, *digests(job.checkpoint))
        if job.source is not None:  # recorded in the attack's configuration, the resume state's fingerprint too
            source_ref = result_files.checkpoint_ref(job.source[0], job.out, *digests(job.source[0]))
            job.config = job.config.model_copy(update={"source": source_ref})
        state = _open_state(job, checkpoint_ref.sha256, force)
        try:
            measured = run(job, state, progress)
        except StateError:  # a resumed state the model contradicts: --force discards it, as any bad state
            if not (force and state.resumed):
                raise
            state.discard()
            state = _open_state(job, checkpoint_ref.sha256, force)
            measured = run(job, state, progress)
        result = record(job, measured, checkpoint_ref, resumed=state.resumed, began=began, command=command, force=force)
        state.discard()
    return EvalOutput(result=result, path=job.out, curve=job.curve, resumed=state.resumed)


def _counts(rb: RandmixBlock) -> tuple[int, int, dict[str, int]]:
    """(clean, robust, per attack) point counts of a result (older ones kept fractions as float32 means)."""
    n = rb.n_examples
    return (round(rb.clean_acc * n), round(rb.robust_acc * n),
            {a: round(acc * n) for a, acc in rb.per_attack_robust_acc.items()})


def add_points(checkpoint: str | Path, dataset: str, options: EvalOptions, *, command: str | None = None,
               progress: ProgressReporter | None = None) -> EvalOutput:
    """Give an earlier result (``options.out``) written before per-point outcomes were recorded its outcomes:
    re-attack the main eps alone and keep the earlier sweep and sanity report. The re-attack must reproduce the
    earlier clean, robust and per-attack counts exactly, or nothing is written (then redo the whole evaluation)."""
    from randmix_bench.result_files import read_result

    began = time.perf_counter()
    if options.out is None:
        raise RandmixError("add_points needs the earlier result as options.out")
    earlier = read_result(options.out)
    if not isinstance(earlier, RobustnessResult):
        raise RandmixError(f"{options.out} is not a robustness result")
    job = prepare(checkpoint, dataset, replace(options, sweep=(), sweep_attacks=(), sanity=None))
    old = earlier.randmix
    sha, weights = digests(job.checkpoint)
    if (old.attack != job.config or old.n_examples != job.options.n_examples or earlier.eps != job.threat.eps.text
            or old.checkpoint.sha256 != sha):
        raise RandmixError(f"{job.out} was made with other settings or another checkpoint; redo it with --force")
    with exclusive(job.out, f"the result {job.out}"):
        checkpoint_ref = result_files.checkpoint_ref(job.checkpoint, job.out, sha, weights)
        state = _open_state(job, sha, force=True)
        measured = run(job, state, progress)
        now = (int(measured.main.clean.sum()), int(measured.main.robust.sum()),
               {a: round(acc * len(measured.main.clean)) for a, acc in measured.main.per_attack.items()})
        if now != _counts(old):
            raise RandmixError(f"re-attacking {job.out} gives counts {now}, not the recorded {_counts(old)} (another "
                               "machine or thread count may round differently); redo the whole evaluation with --force")
        measured.sweep, measured.sanity = list(old.sweep), old.sanity
        measured.flags = sorted(set(old.autoattack_flags) | set(measured.flags))
        measured.attack_seconds = {**old.attack_time_s, **measured.attack_seconds}
        job.curve = job.out.with_suffix(".png") if old.curve_png else None  # redrawn from the same data
        result = record(job, measured, checkpoint_ref, resumed=state.resumed, began=began, command=command, force=True)
        state.discard()
    return EvalOutput(result=result, path=job.out, curve=job.curve, resumed=state.resumed)
