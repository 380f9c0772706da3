"""The paper's claims (arXiv 2503.16760) checked against result files, as data.

:func:`evaluate` turns results into :class:`ClaimVerdict` objects; the leaderboard only renders them.
A verdict compares *variants*: results that agree on everything that defines one (model, dataset,
mixing, smoothing sigma, and for robust accuracy the threat model, eps and attack), never merely on
the mixing name. Robustness results not marked trusted (see :func:`why_untrusted`) are ignored.

Runs are the unit of evidence: one per training seed (``train_seed``), so re-evaluating one checkpoint
on more points or at another eps never counts twice. ``supported`` and ``contradicted`` need
:data:`MIN_RUNS` independent runs per compared variant and a Welch t-test on the runs' values at a
two-sided :data:`ALPHA`, so variants that do not differ are called different at most that often.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from randmix_bench.data import DATASETS
from randmix_bench.mixing import Mixing
from randmix_bench.results import AttackConfig, RandmixBlock, Result, RobustnessResult, ShuffleResult

__all__ = ["ALPHA", "MIN_RUNS", "NEARLY_PP", "NEAR_PERFECT_SSIM", "RULES", "Verdict", "Runs", "Test",
           "ClaimVerdict", "attack_label", "variant_label", "why_untrusted", "compare", "evaluate"]

MIN_RUNS = 3
"""Independent training runs (distinct ``train_seed``) each compared variant needs for a verdict."""
ALPHA = 0.05
"""Two-sided level of every test: equal variants get ``supported`` at most ALPHA/2 of the time."""
NEARLY_PP = 3.0
"""Claim 1: ``chans`` "nearly" matches ``full`` within this many percentage points of clean accuracy;
``space`` is "clearly worse" when more than this many points below."""
NEAR_PERFECT_SSIM = 0.95
"""Claim 3: a "near-perfect" reconstruction on the MNIST family has mean SSIM at least this."""
MNIST_FAMILY = ("mnist", "fashion-mnist", "fashion-mnist-mini")

_TEST = (f"a Welch t-test at two-sided level {ALPHA:g} over independent training runs (distinct checkpoints with "
         f"distinct `train_seed`; the frozen mixers' `mixer_seed` may be fixed or vary, and each verdict says which), "
         f"each run's variance floored at the binomial p(1−p)/n of its n points; fewer than {MIN_RUNS} runs per "
         "variant: insufficient runs")
RULES = {
    "1": ("`chans` (spatial mixing frozen at random init) reaches nearly the clean accuracy of `full`, and `space` "
          "(channel mixing frozen) is clearly worse, on ConvMixer and ResNet.",
          f"clean accuracy on the whole test set as the trainer recorded it (else on the attacked points); supported "
          f"when `full` − `chans` < {NEARLY_PP:g} points and `space` is more than {NEARLY_PP:g} points below each, "
          f"contradicted when the opposite holds, by {_TEST}."),
    "2": ("`chans` models are more robust to adversarial perturbations than `full`, and `chans-smooth` (low-pass "
          "smoothed frozen filters) more still.",
          f"per threat model, eps and attack, and per smoothing sigma: supported when the robust-accuracy gain is "
          f"significant, contradicted when the loss is, by {_TEST}."),
    "3": ("Pixel un-shuffling: `chans` networks reconstruct images scrambled by one fixed pixel permutation "
          "near-perfectly on MNIST and Fashion-MNIST, and also work on CIFAR.",
          f"\"works\" = PSNR above both baselines (the scrambled input and the test set's mean image) and SSIM closing "
          f"at least half the gap between the better baseline's SSIM and 1; near-perfect (MNIST family) = that, with "
          f"SSIM ≥ {NEAR_PERFECT_SSIM:g}; by a one-sample t-test per run against those thresholds at two-sided level "
          f"{ALPHA:g}, over at least {MIN_RUNS} runs with distinct `train_seed`."),
}


class Verdict(str, Enum):
    SUPPORTED = "supported"
    CONTRADICTED = "contradicted"
    INCONCLUSIVE = "inconclusive"
    INSUFFICIENT_RUNS = "insufficient runs"
    NO_DATA = "no data"


@dataclass(frozen=True)
class Runs:
    """A variant's number over its training runs. ``n`` (points per run, the smallest) sets the binomial
    floor of an accuracy's variance; 0 for a number that is not a proportion."""

    values: tuple[float, ...]
    n: int = 0
    independent: int = 0  # runs with a recorded, distinct train_seed
    mixer_seeds: tuple[int, ...] = ()

    @property
    def k(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.k > 1 else None

    @property
    def variance(self) -> float:
        """One run's variance: the runs' sample variance, at least the binomial one (runs that happen to
        agree do not make a number exact)."""
        binomial = self.mean * (1 - self.mean) / self.n if self.n else 0.0
        return max((self.std or 0.0) ** 2, binomial)


@dataclass(frozen=True)
class Test:
    """A t-test of ``diff`` > 0: the verdict and the half-width of its two-sided confidence interval."""

    verdict: Verdict
    diff: float
    halfwidth: float


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile by the Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5): within 1 % for
    df ≥ 2, which :data:`MIN_RUNS` guarantees, and no SciPy dependency."""
    z = statistics.NormalDist().inv_cdf(p)
    g = [(z**3 + z) / 4, (5 * z**5 + 16 * z**3 + 3 * z) / 96, (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
         (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160]
    return z + sum(gi / df ** (i + 1) for i, gi in enumerate(g))


def _t_test(diff: float, parts: Sequence[tuple[float, int]]) -> Test:
    """``diff`` against 0 with standard error from ``(variance, k)`` parts, Welch-Satterthwaite df."""
    terms = [v / k for v, k in parts]
    se2 = sum(terms)
    if se2 == 0:
        verdict = Verdict.SUPPORTED if diff > 0 else Verdict.CONTRADICTED if diff < 0 else Verdict.INCONCLUSIVE
        return Test(verdict, diff, 0.0)
    df = se2**2 / sum(t**2 / (k - 1) for t, (_, k) in zip(terms, parts, strict=True) if t > 0)
    half = t_quantile(1 - ALPHA / 2, df) * math.sqrt(se2)
    verdict = Verdict.SUPPORTED if diff > half else Verdict.CONTRADICTED if diff < -half else Verdict.INCONCLUSIVE
    return Test(verdict, diff, half)


def compare(better: Runs, worse: Runs, margin: float = 0.0) -> Test:
    """Is ``better`` − ``worse`` > ``margin``? ``insufficient runs`` below :data:`MIN_RUNS` independent runs."""
    diff = better.mean - worse.mean - margin
    if min(better.independent, worse.independent) < MIN_RUNS:
        return Test(Verdict.INSUFFICIENT_RUNS, diff, math.nan)
    return _t_test(diff, [(better.variance, better.k), (worse.variance, worse.k)])


def _above(runs: Runs) -> Test:
    """Is the mean of per-run margins above 0 (one-sample t-test)?"""
    if runs.independent < MIN_RUNS:
        return Test(Verdict.INSUFFICIENT_RUNS, runs.mean, math.nan)
    return _t_test(runs.mean, [(runs.variance, runs.k)])


@dataclass(frozen=True)
class ClaimVerdict:
    """One claim checked on one group: what was compared, the numbers, and the verdict with its reason."""

    claim: str  # "1a", "1b", "2a", "2b", "3"
    statement: str  # what this verdict is about, plain text: "chans more robust than full"
    model: str
    dataset: str
    setting: str | None  # the threat setting ("Linf 8/255, AA standard") for robust accuracy, else None
    variants: tuple[str, ...]
    means: tuple[float, ...]  # per variant, in the units shown (percent, dB or SSIM)
    spreads: tuple[float | None, ...]  # std across runs; None with one run
    runs: tuple[int, ...]
    verdict: Verdict
    reason: str


# ------------------------------------------------------------------------------------------ grouping


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


Key = tuple[str, float]  # (mixing, smooth_sigma)
R = TypeVar("R", RobustnessResult, ShuffleResult)
_ORDER = {m.value: i for i, m in enumerate(Mixing)}


def _runs(results: Iterable[R], value: Callable[[R], float], n: Callable[[R], int]) -> Runs:
    """One value per training run: results sharing a train_seed (or, without one, a checkpoint) are
    evaluations of one run, and the one on the most points stands for it."""
    best: dict[tuple[str, object], R] = {}
    for r in sorted(results, key=lambda r: (-n(r), _sha(r), r.name)):
        seed = _block(r).train_seed
        best.setdefault(("seed", seed) if seed is not None else ("sha", _sha(r)), r)
    chosen = list(best.values())
    return Runs(tuple(value(r) for r in chosen), min(n(r) for r in chosen),
                sum(k[0] == "seed" for k in best), tuple(sorted({_block(r).mixer_seed for r in chosen})))


def _block(r: Result) -> RandmixBlock | ShuffleResult:
    return r if isinstance(r, ShuffleResult) else r.randmix


def _sha(r: Result) -> str:
    return _block(r).checkpoint.sha256


def _by_variant(results: Iterable[R]) -> dict[Key, list[R]]:
    groups: dict[Key, list[R]] = defaultdict(list)
    for r in results:
        b = _block(r)
        groups[(b.mixing, b.smooth_sigma)].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (_ORDER[kv[0][0]], kv[0][1])))


def _of(variants: dict[Key, Runs], mixing: str) -> list[Key]:
    return [k for k in variants if k[0] == mixing]


# ------------------------------------------------------------------------------------------ verdicts


def _mixers(*runs: Runs) -> str:
    seeds = sorted({s for r in runs for s in r.mixer_seeds})
    return f"mixer_seed fixed at {seeds[0]}" if len(seeds) == 1 else f"mixer_seed varies ({', '.join(map(str, seeds))})"


def _pair(claim: str, statement: str, group: tuple[str, str, str | None], keys: tuple[Key, Key],
          runs: tuple[Runs, Runs], margin: float) -> ClaimVerdict:
    """A verdict on "first − second > margin" for accuracies (fractions, shown in percent)."""
    test = compare(runs[0], runs[1], margin)
    names = tuple(variant_label(*k) for k in keys)
    if test.verdict is Verdict.INSUFFICIENT_RUNS:
        reason = (f"{runs[0].independent} and {runs[1].independent} independent runs (distinct train_seed); "
                  f"{MIN_RUNS} each are needed")
    else:
        reason = (f"{100 * (runs[0].mean - runs[1].mean):+.2f} points ({names[0]} − {names[1]}), "
                  f"{'threshold ' + format(100 * margin, '+.2f') + ', ' if margin else ''}"
                  f"95 % interval ±{100 * test.halfwidth:.2f}; {_mixers(*runs)}")
    return ClaimVerdict(claim, statement, *group, names, tuple(100 * r.mean for r in runs),
                        tuple(None if r.std is None else 100 * r.std for r in runs), tuple(r.k for r in runs),
                        test.verdict, reason)


def _missing(claim: str, statement: str, group: tuple[str, str, str | None], needs: str) -> ClaimVerdict:
    return ClaimVerdict(claim, statement, *group, (), (), (), (), Verdict.NO_DATA, f"needs {needs}")


def _pairs(claim: str, better: str, worse: str, statement: str, group: tuple[str, str, str | None],
           variants: dict[Key, Runs], margin: float = 0.0) -> list[ClaimVerdict]:
    """One verdict per (better, worse) variant pair; ``statement`` is formatted with both labels."""
    pairs = [(b, w) for b in _of(variants, better) for w in _of(variants, worse)]
    if not pairs:
        return [_missing(claim, statement.format(better=better, worse=worse), group, f"{better} and {worse}")]
    return [_pair(claim, statement.format(better=variant_label(*b), worse=variant_label(*w)), group, (b, w),
                  (variants[b], variants[w]), margin) for b, w in pairs]


def _clean(r: RobustnessResult) -> float:
    rb = r.randmix
    return rb.clean_acc_full_test if rb.clean_acc_full_test is not None else rb.clean_acc


def _points(r: RobustnessResult) -> int:
    """Points a robust accuracy was measured on, for its binomial floor: the attacked ones."""
    return r.randmix.n_examples


def _clean_points(r: RobustnessResult) -> int:
    """Points :func:`_clean` was measured on: a known dataset's whole test set when the trainer recorded it
    (flooring its variance at the attacked points' binomial would hide differences the whole set resolves),
    else the attacked points, a lower bound for an image folder's unknown size."""
    rb = r.randmix
    if rb.clean_acc_full_test is not None and rb.dataset in DATASETS:
        return max(DATASETS[rb.dataset].test_size, rb.n_examples)
    return rb.n_examples


def _training(r: RobustnessResult) -> str:
    """The training that produced a run (recipe and epochs), when the result records it: runs of different
    trainings are different variants, never seeds of one."""
    b = r.randmix
    return "" if b.train_recipe is None else f"recipe {b.train_recipe}, {b.train_epochs} epochs"


def _classification(model: str, dataset: str, training: str, results: list[RobustnessResult]) -> list[ClaimVerdict]:
    group = (model, dataset, training or None)
    clean = {k: _runs(rs, _clean, _clean_points) for k, rs in _by_variant(results).items()}
    out = _pairs("1a", "chans", "full", "{better} nearly matches {worse} in clean accuracy", group, clean,
                 -NEARLY_PP / 100)
    for worse_than in ("full", "chans"):
        out += _pairs("1b", worse_than, "space", "{worse} clearly worse than {better} in clean accuracy", group, clean,
                      NEARLY_PP / 100)
    settings: dict[tuple[int, float, str], list[RobustnessResult]] = defaultdict(list)
    for r in results:
        settings[(("Linf", "L2").index(r.randmix.threat_model), r.randmix.eps_value,
                  attack_label(r.randmix.attack))].append(r)
    for key in sorted(settings):
        rs = settings[key]
        label = (f"{training}; " if training else "") + f"{rs[0].randmix.threat_model} {rs[0].eps}, {key[2]}"
        robust = {k: _runs(v, lambda r: r.randmix.robust_acc, _points) for k, v in _by_variant(rs).items()}
        out += _pairs("2a", "chans", "full", "{better} more robust than {worse}", (model, dataset, label), robust)
        out += _pairs("2b", "chans-smooth", "chans", "{better} more robust than {worse}", (model, dataset, label),
                      robust)
    return out


def _shuffle(model: str, dataset: str, loss: str, epochs: float, results: list[ShuffleResult]) -> list[ClaimVerdict]:
    what = "near-perfect" if dataset in MNIST_FAMILY else "works"
    statement, group = f"chans un-shuffling {what} on {dataset}", (model, dataset, f"{loss} loss, {epochs:g} epochs")
    chans = [r for r in results if r.mixing == Mixing.CHANS.value]
    if not chans:
        return [_missing("3", statement, group, "a chans entry")]
    if any(r.mean_image_ssim is None or r.mean_image_psnr is None for r in chans):
        return [_missing("3", statement, group, "the mean-image baseline (re-run randmix shuffle eval)")]

    def baseline(r: ShuffleResult, metric: str) -> float:
        """The better input-blind output: the scrambled input itself or the test set's mean image."""
        return max(getattr(r, f"identity_{metric}"), getattr(r, f"mean_image_{metric}"))

    def ssim_margin(r: ShuffleResult) -> float:
        base = baseline(r, "ssim")
        return r.ssim - max(NEAR_PERFECT_SSIM if what == "near-perfect" else (1 + base) / 2, base)

    def no_floor(r: ShuffleResult) -> int:
        return 0  # not proportions: no binomial floor

    ssim = _runs(chans, ssim_margin, no_floor)
    psnr = _runs(chans, lambda r: r.psnr - baseline(r, "psnr"), no_floor)
    tests = [_above(ssim), _above(psnr)]
    verdicts = {t.verdict for t in tests}
    if Verdict.INSUFFICIENT_RUNS in verdicts:
        verdict, reason = Verdict.INSUFFICIENT_RUNS, (f"{ssim.independent} independent runs (distinct train_seed); "
                                                      f"{MIN_RUNS} are needed")
    else:
        verdict = (Verdict.CONTRADICTED if Verdict.CONTRADICTED in verdicts else
                   Verdict.SUPPORTED if verdicts == {Verdict.SUPPORTED} else Verdict.INCONCLUSIVE)
        reason = (f"SSIM {ssim.mean:+.4f} ± {tests[0].halfwidth:.4f} above its threshold, PSNR {psnr.mean:+.2f} ± "
                  f"{tests[1].halfwidth:.2f} dB above the better baseline (95 % intervals); {_mixers(ssim)}")
    values = _runs(chans, lambda r: r.ssim, no_floor)
    return [ClaimVerdict("3", statement, *group, ("chans",), (values.mean,), (values.std,), (values.k,), verdict,
                         reason)]


def evaluate(results: Iterable[Result]) -> list[ClaimVerdict]:
    """Every claim's verdicts, per (model, dataset, training) group in sorted order; untrusted robustness results
    are left out."""
    classification: dict[tuple[str, str, str], list[RobustnessResult]] = defaultdict(list)
    shuffle: dict[tuple[str, str, str, float], list[ShuffleResult]] = defaultdict(list)
    for r in results:
        if isinstance(r, ShuffleResult):  # the recipe's loss and epochs are recorded here, so they split groups
            shuffle[(r.model, r.dataset, r.loss, r.epochs)].append(r)
        elif why_untrusted(r) is None:
            classification[(r.randmix.model, r.randmix.dataset, _training(r))].append(r)
    out = [v for key in sorted(classification) for v in _classification(*key, classification[key])]
    return out + [v for key in sorted(shuffle) for v in _shuffle(*key, shuffle[key])]
