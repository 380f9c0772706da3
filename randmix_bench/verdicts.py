"""The verdicts: result files turned into the claims' tables (:mod:`randmix_bench.claims`), by the tests of
:mod:`randmix_bench.statistics`.

A run is one checkpoint (its weights digest, else its file's sha256): the same checkpoint reached through
two result files counts once, the evaluation on the most points standing for it. Each pair's difference,
interval and p come from :mod:`randmix_bench.statistics`; p-values are Holm-adjusted within the family.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import TypeVar

import numpy as np
from scipy import stats as scipy_stats

from randmix_bench import loss_curve, statistics
from randmix_bench.claims import (
    EXPECTED,
    MIN_RUNS,
    MNIST_FAMILY,
    NEAR_PERFECT_SSIM,
    NEARLY_PP,
    NOT_EVIDENCE,
    TIERS,
    Check,
    Comparison,
    Family,
    Scale,
    Verdict,
    attack_label,
    clean_trusted,
    tier_of,
    variant_label,
    why_untrusted,
)
from randmix_bench.data import DATASETS
from randmix_bench.results import CheckpointRef, Result, RobustnessResult, ShuffleResult
from randmix_bench.statistics import ALPHA
from randmix_bench.vocab import Mixing, Norm, Tier, n_epochs

__all__ = ["evaluate", "one_per_run", "robust_table", "shuffle_study"]



Key = tuple[Mixing, float]  # (mixing, smooth_sigma)
R = TypeVar("R", RobustnessResult, ShuffleResult)
C = TypeVar("C", Check, Check | None)
_ORDER = {m: i for i, m in enumerate(Mixing)}


def _ref(r: Result) -> CheckpointRef:
    return r.checkpoint if isinstance(r, ShuffleResult) else r.randmix.checkpoint


def _run_id(r: Result) -> str:
    ref = _ref(r)
    return ref.weights_sha256 or ref.sha256


def _n(r: Result) -> int:
    return r.n_examples if isinstance(r, ShuffleResult) else r.randmix.n_examples


def _runs(results: Iterable[R]) -> dict[Key, list[R]]:
    """Per variant, one result per run (checkpoint): the evaluation on the most points stands for it."""
    best: dict[tuple[Key, str], R] = {}
    for r in sorted(results, key=lambda r: (-_n(r), r.name)):
        mixing = r.mixing if isinstance(r, ShuffleResult) else r.randmix.mixing
        sigma = r.smooth_sigma if isinstance(r, ShuffleResult) else r.randmix.smooth_sigma
        best.setdefault(((mixing, sigma), _run_id(r)), r)
    groups: dict[Key, list[R]] = defaultdict(list)
    for (key, _), r in best.items():
        groups[key].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (_ORDER[kv[0][0]], kv[0][1])))


def one_per_run(results: Iterable[R]) -> list[R]:
    """The results a verdict counts: one per run (checkpoint), the evaluation on the most points."""
    return [r for runs in _runs(results).values() for r in runs]


@dataclass(frozen=True)
class _Sample:
    """One variant's runs on one measure: values (k,) and, when every run of the family has them on the
    same points, 0/1 outcomes (k, n)."""

    values: np.ndarray
    outcomes: np.ndarray | None
    points: tuple[int, ...]  # points each run was measured on


Measure = Callable[[R], tuple[float, tuple[int, ...] | None, list[int] | None, int]]
"""A run's (value, point indices or None, 0/1 outcomes or None, number of points)."""


def _samples(variants: dict[Key, list[R]], measure: Measure[R]) -> tuple[dict[Key, _Sample], bool]:
    """Each variant's sample; per-point outcomes only when every run has them on the same indices."""
    measured = {k: [measure(r) for r in rs] for k, rs in variants.items()}
    every = [m for ms in measured.values() for m in ms]
    per_point = (all(m[1] is not None and m[2] is not None and m[1] == every[0][1] for m in every)
                 and len(every[0][2] or ()) > 1)
    out = {k: _Sample(np.array([m[0] for m in ms]), np.array([m[2] for m in ms], dtype=float) if per_point else None,
                      tuple(m[3] for m in ms))
           for k, ms in measured.items()}
    return out, per_point


# ------------------------------------------------------------------------------------------ tests


def _expected(claim: str, first: Key, second: Key) -> bool:
    return (first[0], second[0]) in EXPECTED[claim]


def _verdict(expected: bool, reverse: bool, p_holm: float, effect: float) -> Verdict:
    if not p_holm < ALPHA:
        return Verdict.NOT_SHOWN
    if not (expected or reverse):
        return Verdict.DIFFERS
    return Verdict.SUPPORTED if (effect > 0) == expected else Verdict.OPPOSITE


def _difference(a: _Sample, b: _Sample, scale: float) -> statistics.Difference:
    if a.outcomes is not None and b.outcomes is not None:
        d = statistics.difference(a.outcomes, b.outcomes, points=True)
    else:
        d = statistics.difference(a.values, b.values)
    return statistics.Difference(d.effect * scale, d.se * scale, d.df)


def _family(claim: str, samples: dict[Key, _Sample], scale: float, tier: str) -> tuple[
        list[Comparison], dict[tuple[Key, Key], statistics.Difference]]:
    """Every pair's comparison (oriented so the paper's expected winner comes first), Holm-adjusted; at a tier that
    cannot test the claims (:data:`~randmix_bench.claims.NOT_EVIDENCE`), no pair has an expected direction, so none
    is `supported` or `opposite`."""
    testable = tier not in NOT_EVIDENCE
    pairs = []
    for a, b in combinations(samples, 2):
        pairs.append((b, a) if _expected(claim, b, a) else (a, b))
    diffs: dict[tuple[Key, Key], statistics.Difference] = {}
    for a, b in pairs:
        if min(len(samples[a].values), len(samples[b].values)) >= MIN_RUNS:
            diffs[(a, b)] = _difference(samples[a], samples[b], scale)
    raw = np.array([float(diffs[p].p) if p in diffs else np.nan for p in pairs])
    adjusted = statistics.holm(raw) if len(pairs) else raw
    m = max(int(np.sum(~np.isnan(raw))), 1)
    rows = []
    for (a, b), p, p_holm in zip(pairs, raw, adjusted, strict=True):
        sa, sb = samples[a], samples[b]
        means = (scale * float(sa.values.mean()), scale * float(sb.values.mean()))
        spreads = tuple(scale * float(s.values.std(ddof=1)) if len(s.values) > 1 else None for s in (sa, sb))
        expected, reverse = testable and _expected(claim, a, b), testable and _expected(claim, b, a)
        if (a, b) in diffs:
            d = diffs[(a, b)]
            interval = d.interval()
            low, high = float(interval[0]), float(interval[1])
            detectable = statistics.min_detectable(float(d.se), float(d.df), ALPHA / m)
            verdict = _verdict(expected, reverse, float(p_holm), float(d.effect))
        else:
            low = high = detectable = math.nan
            verdict = Verdict.INSUFFICIENT_RUNS
        rows.append(Comparison(variant_label(*a), variant_label(*b), means, (spreads[0], spreads[1]),
                               (len(sa.values), len(sb.values)), means[0] - means[1], float(low), float(high),
                               float(p), float(p_holm), detectable, expected, verdict))
    return rows, diffs


def _scale(tier: str, model: str, dataset: str, training: str | None, setting: str | None,
           samples: dict[Key, _Sample]) -> Scale:
    points = [n for s in samples.values() for n in s.points]
    runs = [len(s.values) for s in samples.values()]
    return Scale(tier, model, dataset, training, setting, (min(points), max(points)), (min(runs), max(runs)))


def _equivalence(diffs: dict[tuple[Key, Key], statistics.Difference], samples: dict[Key, _Sample]) -> Check | None:
    """Claim 1a: chans vs full within ±NEARLY_PP points (TOST, a family of its own: one hypothesis)."""
    chans, full = [k for k in samples if k[0] is Mixing.CHANS], [k for k in samples if k[0] is Mixing.FULL]
    if not (chans and full):
        return None
    statement = f"`chans` nearly matches `full` (TOST, margin ±{NEARLY_PP:g} point)"
    if (chans[0], full[0]) in diffs:
        d = diffs[(chans[0], full[0])]
    elif (full[0], chans[0]) in diffs:
        d = diffs[(full[0], chans[0])]
        d = statistics.Difference(-d.effect, d.se, d.df)  # chans − full
    else:
        return Check(statement, Verdict.INSUFFICIENT_RUNS, f"{MIN_RUNS} runs per variant are needed")
    test = statistics.equivalence(d, NEARLY_PP)
    low, high = d.interval(1 - 2 * ALPHA)
    verdict = (Verdict.EQUIVALENT if test.p_inside < ALPHA else
               Verdict.NOT_EQUIVALENT if test.p_outside < ALPHA else Verdict.UNDECIDED)
    return Check(statement, verdict, f"chans − full {float(d.effect):+.2f} points, 90 % interval "
                                     f"[{float(low):+.2f}, {float(high):+.2f}]; TOST p {float(test.p_inside):.3g}, "
                                     f"beyond the margin p {float(test.p_outside):.3g}")


def _at_scale(tier: str, check: C) -> C:
    """A claim's own check as its tier may state it: at a tier that cannot test the claims, its numbers
    without a verdict."""
    if check is None or tier not in NOT_EVIDENCE or check.verdict in (Verdict.INSUFFICIENT_RUNS, Verdict.NO_DATA):
        return check
    return Check(check.statement, Verdict.NO_VERDICT, check.detail)


def _training(r: RobustnessResult) -> str | None:
    """The training that produced a run, when recorded: runs of different trainings are never seeds of one."""
    b = r.randmix
    if b.train_recipe is None:
        return None
    return f"recipe {b.train_recipe}" + ("" if b.train_epochs is None else f", {n_epochs(b.train_epochs)}")


def _clean_measure(results: list[RobustnessResult]) -> tuple[Measure[RobustnessResult], str]:
    """Claim 1's clean accuracy: per point on the whole test set when every run has it, else the whole test
    set's accuracy, else the attacked points (per point when recorded)."""
    blocks = [r.randmix for r in results]
    if all(b.full_test_clean is not None for b in blocks):
        return (lambda r: (float(np.mean(r.randmix.full_test_clean)),
                           (len(r.randmix.full_test_clean or ()),), r.randmix.full_test_clean,
                           len(r.randmix.full_test_clean or ()))), "whole test set"
    if all(b.clean_acc_full_test is not None for b in blocks):
        def whole(r: RobustnessResult) -> tuple[float, None, None, int]:
            info = DATASETS.get(r.randmix.dataset)
            return r.randmix.clean_acc_full_test or 0.0, None, None, info.test_size if info else r.randmix.n_examples
        return whole, "whole test set"

    def attacked(r: RobustnessResult) -> tuple[float, tuple[int, ...] | None, list[int] | None, int]:
        p = r.randmix.points
        return (r.randmix.clean_acc, None if p is None else tuple(p.indices), None if p is None else p.clean,
                r.randmix.n_examples)
    return attacked, "attacked points"


def _robust(r: RobustnessResult) -> tuple[float, tuple[int, ...] | None, list[int] | None, int]:
    p = r.randmix.points
    return (r.randmix.robust_acc, None if p is None else tuple(p.indices), None if p is None else p.robust,
            r.randmix.n_examples)


def _setting(r: RobustnessResult) -> str:
    return f"{r.randmix.threat_model} {r.eps}, {attack_label(r.randmix.attack)}"


def robust_table(r: RobustnessResult) -> tuple[str, str, str, str | None, str]:
    """The claim-2 table a robustness result is compared in, as its :class:`Scale` names it: tier, model, dataset,
    training and setting (so that what is said about an entry, e.g. its masking controls, goes beside its table)."""
    rb = r.randmix
    return tier_of(rb.checkpoint), rb.model, rb.dataset, _training(r), _setting(r)


def shuffle_study(r: ShuffleResult) -> tuple[str, str, str, str]:
    """The claim-3 study a shuffle result is compared in, as its :class:`Scale` names it: tier, model, dataset and
    training (the recipe's loss and epochs are recorded in the result, so they split studies)."""
    return tier_of(r.checkpoint), r.model, r.dataset, f"{r.loss} loss, {n_epochs(r.epochs)}"


def _classification(tier: str, model: str, dataset: str, training: str | None,
                    results: list[RobustnessResult]) -> list[Family]:
    out = []
    variants = _runs(results)
    measure, where = _clean_measure([r for rs in variants.values() for r in rs])
    samples, per_point = _samples(variants, measure)
    rows, diffs = _family("1", samples, 100, tier)
    check = _at_scale(tier, _equivalence(diffs, samples))
    out.append(Family("1", f"clean accuracy ({where})", "points", _scale(tier, model, dataset, training, None, samples),
                      per_point, tuple(rows), () if check is None else (check,)))
    settings: dict[tuple[int, float, str], list[RobustnessResult]] = defaultdict(list)
    for r in results:
        if why_untrusted(r) is not None:  # a clean-only result feeds claim 1 alone
            continue
        settings[(list(Norm).index(r.randmix.threat_model), r.randmix.eps_value,
                  attack_label(r.randmix.attack))].append(r)
    for key in sorted(settings):
        rs = settings[key]
        setting = _setting(rs[0])
        samples, per_point = _samples(_runs(rs), _robust)
        rows, _ = _family("2", samples, 100, tier)
        out.append(Family("2", "robust accuracy", "points", _scale(tier, model, dataset, training, setting, samples),
                          per_point, tuple(rows)))
    return out


def _baseline(r: ShuffleResult, metric: str) -> float:
    """The better input-blind output: the scrambled input itself or the test set's mean image."""
    return max(getattr(r, f"identity_{metric}"), getattr(r, f"mean_image_{metric}"))


def _thresholds(tier: str, dataset: str, chans: list[ShuffleResult]) -> Check:
    """Claim 3's own test: do chans runs clear the "works" (or near-perfect) thresholds? Falling short is `opposite`
    only for the paper's network (the `paper` tier) trained until its loss flattened: a smaller network, or one
    still learning, says nothing about what the paper's reaches (`no verdict`, with its numbers)."""
    what = "near-perfect" if dataset in MNIST_FAMILY else "works"
    statement = f"`chans` un-shuffling {what} on {dataset}"
    if not chans:
        return Check(statement, Verdict.NO_DATA, "needs a chans entry")
    if any(r.mean_image_ssim is None or r.mean_image_psnr is None for r in chans):
        return Check(statement, Verdict.NO_DATA, "needs the mean-image baseline (re-run randmix shuffle eval)")
    if len(chans) < MIN_RUNS:
        return Check(statement, Verdict.INSUFFICIENT_RUNS, f"{len(chans)} of the {MIN_RUNS} runs needed")

    def ssim_margin(r: ShuffleResult) -> float:
        base = _baseline(r, "ssim")
        return r.ssim - max((1 + base) / 2, NEAR_PERFECT_SSIM if what == "near-perfect" else 0.0)

    margins = [np.array([f(r) for r in chans]) for f in (ssim_margin, lambda r: r.psnr - _baseline(r, "psnr"))]
    p = statistics.holm([scipy_stats.ttest_1samp(m, 0.0).pvalue for m in margins])
    above = [pi < ALPHA and m.mean() > 0 for pi, m in zip(p, margins, strict=True)]
    below = [pi < ALPHA and m.mean() < 0 for pi, m in zip(p, margins, strict=True)]
    verdict = Verdict.OPPOSITE if any(below) else Verdict.SUPPORTED if all(above) else Verdict.NOT_SHOWN
    settled = tier == Tier.PAPER and all(loss_curve.trend(r.train_loss) is loss_curve.Trend.FLAT for r in chans)
    if verdict is Verdict.OPPOSITE and not settled:  # untraced or too coarse a trace is no evidence of a flat loss
        verdict = Verdict.NO_VERDICT
    ssim, psnr = (m.mean() for m in margins)
    return Check(statement, verdict, f"SSIM {_side(ssim, '.4f', '')} its threshold (Holm p {p[0]:.3g}), "
                                     f"PSNR {_side(psnr, '.2f', ' dB')} the better baseline (Holm p {p[1]:.3g})")


def _side(margin: float, spec: str, unit: str) -> str:
    """A signed margin in words ("0.3060 below"), so a shortfall never reads as a negative amount "above"."""
    return f"{abs(margin):{spec}}{unit} {'above' if margin >= 0 else 'below'}"


def _shuffle(tier: str, model: str, dataset: str, training: str, results: list[ShuffleResult]) -> list[Family]:
    variants = _runs(results)
    out = []
    for measure, unit in (("SSIM", ""), ("PSNR", "dB")):
        def value(r: ShuffleResult, metric: str = measure.lower()) -> tuple[float, None, None, int]:
            return getattr(r, metric), None, None, r.n_examples
        samples, _ = _samples(variants, value)
        rows, _ = _family("3", samples, 1.0, tier)
        checks = (_at_scale(tier, _thresholds(tier, dataset, variants.get((Mixing.CHANS, 0.0), []))),) \
            if measure == "SSIM" else ()
        out.append(Family("3", measure, unit, _scale(tier, model, dataset, training, None, samples), False,
                          tuple(rows), checks))
    return out


def evaluate(results: Iterable[Result]) -> list[Family]:
    """Every table, tiers in :data:`TIERS` order, then model, dataset, training and claim; untrusted robustness
    results are left out (a clean-only one counts for claim 1: see :func:`~randmix_bench.claims.clean_trusted`)."""
    classification: dict[tuple[str, str, str, str], list[RobustnessResult]] = defaultdict(list)
    shuffle: dict[tuple[str, str, str, str], list[ShuffleResult]] = defaultdict(list)
    for r in results:
        if isinstance(r, ShuffleResult):
            shuffle[shuffle_study(r)].append(r)
        elif clean_trusted(r):
            classification[(tier_of(r.randmix.checkpoint), r.randmix.model, r.randmix.dataset,
                            _training(r) or "")].append(r)
    rank = {t: i for i, t in enumerate(TIERS)}
    out = [(rank[k[0]], k[1:], f) for k in classification for f in _classification(*k[:3], k[3] or None,
                                                                                     classification[k])]
    out += [(rank[k[0]], k[1:], f) for k in shuffle for f in _shuffle(*k, shuffle[k])]
    return [f for _, _, f in sorted(out, key=lambda t: (t[0], t[1], t[2].claim))]
