"""The paper's claims (arXiv 2503.16760) checked against result files, as data.

:func:`evaluate` turns results into :class:`Family` tables; the leaderboard only renders them. A family
is every pair of variants of one study on one measure: same tier, model, dataset, training recipe and
epochs, and for robust accuracy the same threat model, eps and attack. Variants differ in mixing and
smoothing sigma. Robustness results not marked trusted (see :func:`why_untrusted`) are ignored.

A run is one checkpoint (its weights digest, else its file's sha256): the same checkpoint reached through
two result files counts once, the evaluation on the most points standing for it. Each pair's difference,
interval and p come from :mod:`randmix_bench.statistics`; p-values are Holm-adjusted within the family.
Verdict words keep direction and size apart: ``supported`` / ``opposite`` (significant in / against the
paper's direction), ``differs`` (significant, on a pair the paper says nothing about), ``not shown``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import combinations
from pathlib import PurePosixPath
from typing import TypeVar

import numpy as np
from scipy import stats as scipy_stats

from randmix_bench import statistics
from randmix_bench.data import DATASETS
from randmix_bench.mixing import Mixing
from randmix_bench.results import AttackConfig, CheckpointRef, Result, RobustnessResult, ShuffleResult
from randmix_bench.statistics import ALPHA

__all__ = ["ALPHA", "MIN_RUNS", "NEARLY_PP", "NEARLY_REASON", "NEAR_PERFECT_SSIM", "TIERS", "RULES", "EXPECTED",
           "Verdict", "Scale", "Comparison", "Check", "Family", "attack_label", "variant_label", "why_untrusted",
           "tier_of", "evaluate", "families_of"]

MIN_RUNS = 3
"""Runs (distinct checkpoints) each compared variant needs for a test: the calibration is done at 3."""
NEARLY_PP = 1.0
"""Claim 1a's equivalence margin, in points of clean accuracy: see :data:`NEARLY_REASON`."""
NEARLY_REASON = ("a gap a reader would still call \"nearly the same accuracy\" (the paper's word) on a 10-class "
                 "task, yet wider than the seed-to-seed spread of clean accuracy of every study published here, so "
                 "that 3 seeds can show it; fixed before the medium tier's results existed")
NEAR_PERFECT_SSIM = 0.95
"""Claim 3: a "near-perfect" reconstruction on the MNIST family has mean SSIM at least this."""
MNIST_FAMILY = ("mnist", "fashion-mnist", "fashion-mnist-mini")

TIERS = {  # checkpoints/<tier>/ (vocab.Tier) as `randmix reproduce` publishes them, in the order FINDINGS.md shows them
    "medium": "the largest study 2 CPU cores finish in hours that can test the claims",
    "paper-slice": "ConvMixer-256/8 at the medium tier's protocol, on a GPU",
    "paper": "the paper's scale, on a GPU",
    "other": "entries not published by a `randmix reproduce` tier",
    "small": "smoke test of the pipeline, not evidence on the claims",
    "smoke": "the tiny model on synthetic data, a check of a machine or the pipeline, not evidence on the claims",
}

EXPECTED = {  # per claim, the (better, worse) mixings the paper names; other pairs have no expected direction
    "1": {("full", "space"), ("chans", "space")},
    "2": {("chans", "full"), ("chans-smooth", "chans"), ("chans-smooth", "full")},
    "3": set(),
}

_METHOD = ("every pair of variants, the difference of their mean over runs with a 95 % interval from a paired "
           "per-point model (seed-to-seed variance of each variant plus the variant-by-point interaction, the "
           "within-point seed noise subtracted so nothing counts twice; Welch-Satterthwaite df capped at the "
           f"seeds' k₁ + k₂ − 2), Holm-adjusted p within the table at family-wise level {ALPHA:g}; at least "
           f"{MIN_RUNS} runs (distinct checkpoints) per variant. Tables marked *seed-level only* come from result "
           "files without per-point outcomes: Welch's test on the run values")
RULES = {
    "1": ("`chans` (spatial mixing frozen at random init) reaches nearly the clean accuracy of `full`, and `space` "
          "(channel mixing frozen) is clearly worse, on ConvMixer and ResNet.",
          f"clean accuracy on the whole test set when recorded (else on the attacked points); {_METHOD}. `space` "
          f"worse than `full` and than `chans`: `supported` when significant in that direction. `chans` nearly "
          f"matches `full`: two one-sided tests (TOST) at {ALPHA:g} against a margin of ±{NEARLY_PP:g} point, "
          f"{NEARLY_REASON}: `equivalent within ±{NEARLY_PP:g}`, `not equivalent` (significantly beyond the "
          "margin) or `undecided`."),
    "2": ("`chans` models are more robust to adversarial perturbations than `full`, and `chans-smooth` (low-pass "
          "smoothed frozen filters) more still.",
          f"robust accuracy per threat model, eps and attack; {_METHOD}. `chans` > `full`, `chans-smooth` > `chans` "
          "and `chans-smooth` > `full`: `supported` when significant in that direction, `opposite` when significant "
          "the other way."),
    "3": ("Pixel un-shuffling: `chans` networks reconstruct images scrambled by one fixed pixel permutation "
          "near-perfectly on MNIST and Fashion-MNIST, and also work on CIFAR.",
          "per-run mean SSIM and PSNR (no per-point data): every pair of variants by Welch's test on the run "
          f"values, Holm-adjusted within each table. \"Works\" = PSNR above both baselines (the scrambled input and "
          "the test set's mean image) and SSIM closing at least half the gap between the better baseline's SSIM "
          f"and 1; near-perfect (MNIST family) = that, with SSIM ≥ {NEAR_PERFECT_SSIM:g}: a one-sample t-test per "
          f"margin, Holm over the two, `supported` when both are significantly above, `opposite` when one is "
          f"significantly below; at least {MIN_RUNS} runs."),
}


class Verdict(str, Enum):
    SUPPORTED = "supported"
    OPPOSITE = "opposite"
    DIFFERS = "differs"
    NOT_SHOWN = "not shown"
    EQUIVALENT = "equivalent"
    NOT_EQUIVALENT = "not equivalent"
    UNDECIDED = "undecided"
    INSUFFICIENT_RUNS = "insufficient runs"
    NO_DATA = "no data"


@dataclass(frozen=True)
class Scale:
    """What a table was measured at: every verdict names it."""

    tier: str
    model: str
    dataset: str
    training: str | None  # "recipe convmixer-small-fmnist, 3 epochs" or "mse loss, 1 epochs"
    setting: str | None  # "Linf 0.015, AA standard" for robust accuracy
    points: tuple[int, int]  # fewest and most points a run's number was measured on
    seeds: tuple[int, int]  # fewest and most runs per variant

    def label(self) -> str:
        def span(lo: int, hi: int) -> str:
            return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"
        parts = [self.model, self.dataset, self.training, self.setting, f"n = {span(*self.points)} points",
                 f"{span(*self.seeds)} seed{'s' if self.seeds[1] != 1 else ''} per variant"]
        return " · ".join(p for p in parts if p)


@dataclass(frozen=True)
class Comparison:
    """One pair: ``first`` − ``second`` in the table's unit (points of accuracy, SSIM or dB)."""

    first: str
    second: str
    means: tuple[float, float]
    spreads: tuple[float | None, float | None]  # std over runs; None with one run
    runs: tuple[int, int]
    effect: float
    low: float  # 95 % interval
    high: float
    p: float  # two-sided, unadjusted; nan without a test
    p_holm: float
    detectable: float  # minimum detectable difference, 80 % power at Holm's worst case for the table
    expected: bool  # the paper says first > second
    verdict: Verdict


@dataclass(frozen=True)
class Check:
    """A claim's own test beside the pairwise table: claim 1a's equivalence, claim 3's thresholds."""

    statement: str
    verdict: Verdict
    detail: str

    @property
    def label(self) -> str:
        return f"{self.verdict.value} within ±{NEARLY_PP:g}" if self.verdict is Verdict.EQUIVALENT else \
            self.verdict.value


@dataclass(frozen=True)
class Family:
    """One table: all pairs of one study's variants on one measure, Holm-adjusted together."""

    claim: str  # "1", "2", "3"
    measure: str  # "clean accuracy", "robust accuracy", "SSIM", "PSNR"
    unit: str  # "points", "", "dB"
    scale: Scale
    per_point: bool  # the variant-by-point interaction was estimated; False: seed-level only
    rows: tuple[Comparison, ...]
    checks: tuple[Check, ...] = ()

    @property
    def tested(self) -> int:
        return sum(not math.isnan(r.p) for r in self.rows)


# ------------------------------------------------------------------------------------------ labels


def attack_label(attack: AttackConfig) -> str:
    """How a robust number was attacked, short: ``AA standard``, ``AA custom: apgd-ce (20 iter)``, ``PGD-100``."""
    if attack.attack == "none":
        return "none (clean)"
    if attack.attack == "pgd":
        return f"PGD-{attack.n_iter or 100}"
    if attack.version in ("standard", "plus"):
        return f"AA {attack.version}"
    budget = [f"{v} {k}" for k, v in (("iter", attack.n_iter), ("queries", attack.n_queries)) if v is not None]
    return f"AA {attack.version}: {', '.join(attack.attacks)}" + (f" ({', '.join(budget)})" if budget else "")


def variant_label(mixing: str, sigma: float) -> str:
    """A variant's name: its mixing, with the smoothing sigma when it has one."""
    return f"{mixing} (σ={sigma:g})" if mixing == Mixing.CHANS_SMOOTH.value or sigma else mixing


def why_untrusted(result: RobustnessResult) -> str | None:
    """Why a robustness result may not be ranked or feed a verdict, or None when it may: it needs a
    gradient-masking sanity report that passed, no AutoAttack flag, and must not be marked unreliable."""
    rb = result.randmix
    flags = [*rb.autoattack_flags, *(rb.sanity.autoattack_flags if rb.sanity else [])]
    if rb.sanity is None:
        return "unchecked: no sanity report (randmix eval --sanity)"
    if not rb.sanity.passed:
        return "sanity checks failed"
    if flags:
        return f"AutoAttack flagged it: {'; '.join(flags)}"
    if result.unreliable:
        return "marked unreliable"
    return None


def tier_of(ref: CheckpointRef) -> str:
    """The tier whose ``randmix reproduce`` published a checkpoint (``checkpoints/<tier>/...``), else "other"."""
    parts = PurePosixPath(ref.path).parts
    return parts[1] if len(parts) > 2 and parts[0] == "checkpoints" and parts[1] in TIERS else "other"


# ------------------------------------------------------------------------------------------ runs


Key = tuple[str, float]  # (mixing, smooth_sigma)
R = TypeVar("R", RobustnessResult, ShuffleResult)
_ORDER = {m.value: i for i, m in enumerate(Mixing)}


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


def _family(claim: str, samples: dict[Key, _Sample], scale: float) -> tuple[list[Comparison],
                                                                          dict[tuple[Key, Key], statistics.Difference]]:
    """Every pair's comparison (oriented so the paper's expected winner comes first), Holm-adjusted."""
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
        expected, reverse = _expected(claim, a, b), _expected(claim, b, a)
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
    chans, full = [k for k in samples if k[0] == "chans"], [k for k in samples if k[0] == "full"]
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
                                     f"[{float(low):+.2f}, {float(high):+.2f}]; TOST p {float(test.p_inside):.3g}")


def _training(r: RobustnessResult) -> str | None:
    """The training that produced a run, when recorded: runs of different trainings are never seeds of one."""
    b = r.randmix
    return None if b.train_recipe is None else f"recipe {b.train_recipe}, {b.train_epochs} epochs"


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


def _classification(tier: str, model: str, dataset: str, training: str | None,
                    results: list[RobustnessResult]) -> list[Family]:
    out = []
    variants = _runs(results)
    measure, where = _clean_measure([r for rs in variants.values() for r in rs])
    samples, per_point = _samples(variants, measure)
    rows, diffs = _family("1", samples, 100)
    check = _equivalence(diffs, samples)
    out.append(Family("1", f"clean accuracy ({where})", "points", _scale(tier, model, dataset, training, None, samples),
                      per_point, tuple(rows), () if check is None else (check,)))
    settings: dict[tuple[int, float, str], list[RobustnessResult]] = defaultdict(list)
    for r in results:
        settings[(("Linf", "L2").index(r.randmix.threat_model), r.randmix.eps_value,
                  attack_label(r.randmix.attack))].append(r)
    for key in sorted(settings):
        rs = settings[key]
        setting = f"{rs[0].randmix.threat_model} {rs[0].eps}, {key[2]}"
        samples, per_point = _samples(_runs(rs), _robust)
        rows, _ = _family("2", samples, 100)
        out.append(Family("2", "robust accuracy", "points", _scale(tier, model, dataset, training, setting, samples),
                          per_point, tuple(rows)))
    return out


def _baseline(r: ShuffleResult, metric: str) -> float:
    """The better input-blind output: the scrambled input itself or the test set's mean image."""
    return max(getattr(r, f"identity_{metric}"), getattr(r, f"mean_image_{metric}"))


def _thresholds(dataset: str, chans: list[ShuffleResult]) -> Check:
    """Claim 3's own test: do chans runs clear the "works" (or near-perfect) thresholds?"""
    what = "near-perfect" if dataset in MNIST_FAMILY else "works"
    statement = f"`chans` un-shuffling {what} on {dataset}"
    if not chans:
        return Check(statement, Verdict.NO_DATA, "needs a chans entry")
    if any(r.mean_image_ssim is None or r.mean_image_psnr is None for r in chans):
        return Check(statement, Verdict.NO_DATA, "needs the mean-image baseline (re-run randmix shuffle eval)")
    if len(chans) < MIN_RUNS:
        return Check(statement, Verdict.INSUFFICIENT_RUNS, f"{len(chans)} runs; {MIN_RUNS} are needed")

    def ssim_margin(r: ShuffleResult) -> float:
        base = _baseline(r, "ssim")
        return r.ssim - max(NEAR_PERFECT_SSIM if what == "near-perfect" else (1 + base) / 2, base)

    margins = [np.array([f(r) for r in chans]) for f in (ssim_margin, lambda r: r.psnr - _baseline(r, "psnr"))]
    p = statistics.holm([scipy_stats.ttest_1samp(m, 0.0).pvalue for m in margins])
    above = [pi < ALPHA and m.mean() > 0 for pi, m in zip(p, margins, strict=True)]
    below = [pi < ALPHA and m.mean() < 0 for pi, m in zip(p, margins, strict=True)]
    verdict = Verdict.OPPOSITE if any(below) else Verdict.SUPPORTED if all(above) else Verdict.NOT_SHOWN
    return Check(statement, verdict, f"SSIM {margins[0].mean():+.4f} above its threshold (Holm p {p[0]:.3g}), PSNR "
                                     f"{margins[1].mean():+.2f} dB above the better baseline (Holm p {p[1]:.3g})")


def _shuffle(tier: str, model: str, dataset: str, training: str, results: list[ShuffleResult]) -> list[Family]:
    variants = _runs(results)
    out = []
    for measure, unit in (("SSIM", ""), ("PSNR", "dB")):
        def value(r: ShuffleResult, metric: str = measure.lower()) -> tuple[float, None, None, int]:
            return getattr(r, metric), None, None, r.n_examples
        samples, _ = _samples(variants, value)
        rows, _ = _family("3", samples, 1.0)
        checks = (_thresholds(dataset, variants.get(("chans", 0.0), [])),) if measure == "SSIM" else ()
        out.append(Family("3", measure, unit, _scale(tier, model, dataset, training, None, samples), False,
                          tuple(rows), checks))
    return out


def evaluate(results: Iterable[Result]) -> list[Family]:
    """Every table, tiers in :data:`TIERS` order, then model, dataset, training and claim; untrusted robustness
    results are left out."""
    classification: dict[tuple[str, str, str, str], list[RobustnessResult]] = defaultdict(list)
    shuffle: dict[tuple[str, str, str, str], list[ShuffleResult]] = defaultdict(list)
    for r in results:
        if isinstance(r, ShuffleResult):  # the recipe's loss and epochs are recorded here, so they split groups
            shuffle[(tier_of(r.checkpoint), r.model, r.dataset, f"{r.loss} loss, {r.epochs:g} epochs")].append(r)
        elif why_untrusted(r) is None:
            classification[(tier_of(r.randmix.checkpoint), r.randmix.model, r.randmix.dataset,
                            _training(r) or "")].append(r)
    rank = {t: i for i, t in enumerate(TIERS)}
    out = [(rank[k[0]], k[1:], f) for k in classification for f in _classification(*k[:3], k[3] or None,
                                                                                     classification[k])]
    out += [(rank[k[0]], k[1:], f) for k in shuffle for f in _shuffle(*k, shuffle[k])]
    return [f for _, _, f in sorted(out, key=lambda t: (t[0], t[1], t[2].claim))]


def families_of(families: Sequence[Family], claim: str) -> list[Family]:
    """The tables of one claim, in page order."""
    return [f for f in families if f.claim == claim]
