"""The paper's claims (arXiv 2503.16760) as data: what each says, the verdict rules and words, and the
tables a verdict is given in (:class:`Family` of :class:`Comparison` rows and :class:`Check` tests).

:func:`randmix_bench.verdicts.evaluate` fills the tables from result files; :mod:`randmix_bench.findings`
renders them. A family is every pair of variants of one study on one measure: same tier, model, dataset,
training recipe and epochs, and for robust accuracy the same threat model, eps and attack. Variants differ in
mixing and smoothing sigma. Robustness results not marked trusted (see :func:`why_untrusted`) feed no verdict.
Verdict words keep direction and size apart: ``supported`` / ``opposite`` (significant in / against the
paper's direction), ``differs`` (significant, on a pair the paper says nothing about), ``not shown``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath

from randmix_bench.results import AttackConfig, CheckpointRef, RobustnessResult
from randmix_bench.statistics import ALPHA
from randmix_bench.vocab import AAVersion, Attack, Mixing, Tier

__all__ = ["ALPHA", "MIN_RUNS", "NOT_EVIDENCE", "OTHER", "OTHER_ENTRIES", "TOO_SMALL", "NEARLY_PP", "NEARLY_REASON",
           "NEAR_PERFECT_SSIM", "TIERS", "RULES", "PAPER_SCALE_ONLY", "EXPECTED", "Verdict", "Scale", "Comparison",
           "Check", "Family", "attack_label", "variant_label", "why_untrusted", "clean_trusted", "tier_of",
           "families_of"]

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

OTHER = "other"
"""The tier of an entry no `randmix reproduce` tier published (:func:`tier_of`): a user's own evaluation."""
OTHER_ENTRIES = "entries no randmix reproduce tier published"  # plain text: headings escape backticks
TIERS = {  # checkpoints/<tier>/ (vocab.Tier) as `randmix reproduce` publishes them, in the order FINDINGS.md shows them
    "medium": "the study that can test the claims on 2 CPU cores, run over several sittings",
    "paper-slice": "the medium tier's protocol at a size only a GPU affords: ConvMixer-256/8",
    "paper": "the paper's scale, on a GPU",
    OTHER: f"{OTHER_ENTRIES}: nothing declares their scale, not evidence on the claims",
    "small": "smoke test of the pipeline, not evidence on the claims",
    "smoke": "the tiny model on synthetic data, a check of a machine or the pipeline, not evidence on the claims",
}

TOO_SMALL = (Tier.SMALL.value, Tier.SMOKE.value)
"""The tiers too small to test the paper's claims, in page order."""
NOT_EVIDENCE = frozenset({*TOO_SMALL, OTHER})
"""The tiers that cannot test the paper's claims: those :data:`TOO_SMALL`, and :data:`OTHER` (nothing declares its
entries' scale, so a user's one-epoch toy must not read as evidence). Their tables keep every number, but no pair
there is called `supported` or `opposite` (a significant difference reads `differs`, its sign saying which is higher)
and a claim's own check reads `no verdict`."""

_FULL, _CHANS, _SPACE, _SMOOTH = Mixing.FULL, Mixing.CHANS, Mixing.SPACE, Mixing.CHANS_SMOOTH
EXPECTED: dict[str, set[tuple[Mixing, Mixing]]] = {  # per claim, the (better, worse) mixings the paper names; other
    "1": {(_FULL, _SPACE), (_CHANS, _SPACE)},  # pairs have no expected direction
    "2": {(_CHANS, _FULL), (_SMOOTH, _CHANS), (_SMOOTH, _FULL)},
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
          "significantly below for the paper's network (the `paper` tier) trained until its loss flattened (below "
          "it, or still learning, a shortfall says nothing about the paper's network: `no verdict`, with the "
          "numbers), while `supported` holds at any tier that can test the claims (a smaller or shorter-trained "
          f"network that already clears the threshold speaks for the paper's); at least {MIN_RUNS} runs."),
}

def _paper_scale_only() -> dict[str, str]:
    """Per claim, what the tiers below `paper` cannot settle however their verdicts read; the protocol's numbers
    come from the plans, so that a retuned tier never leaves this text stale."""
    from randmix_bench.plans import TIERS as PLANS
    from randmix_bench.plans import Study
    from randmix_bench.vocab import Tier

    medium = next(s for s in PLANS[Tier.MEDIUM] if isinstance(s, Study))
    sliced = next(s for s in PLANS[Tier.PAPER_SLICE] if isinstance(s, Study))
    paper_eps = sorted({s.eps.text for s in PLANS[Tier.PAPER] if isinstance(s, Study)})
    attacks = " + ".join(a.value.upper() for a in sliced.attacks) or "AutoAttack standard"
    return {
        "1": "whether `chans` nearly matches `full`, and `space` is clearly worse, on the paper's harder datasets "
             "and on ResNet-18: below the `paper` tier every study that can test the claims trains a ConvMixer on "
             "Fashion-MNIST, where every variant scores high and a gap has little room to show; the `paper` tier "
             "adds cifar10-jpeg (CIFAR-10's images re-encoded as JPEG, not CIFAR-10 itself) and ResNet-18, and no "
             "tier here has the paper's CIFAR-10, CIFAR-100 or ImageNet.",
        "2": "whether `chans` is more robust than `full`, and `chans-smooth` more still, at the paper's budgets: the "
             "`paper-slice` tier runs the paper's ConvMixer-256/8 at the medium tier's protocol (Fashion-MNIST, "
             f"{sliced.epochs} epochs, Linf {sliced.eps.text}, {attacks} on the first {sliced.n_examples} points; "
             f"the medium tier: {medium.n_examples}), so what is left is the paper's datasets, ResNet-18, the "
             f"recipes' full training and RobustBench's Linf {' and '.join(paper_eps)} with AutoAttack standard (the "
             "`paper` tier): an advantage found here may grow, shrink or vanish there.",
        "3": "whether the paper's unshuffler (width 512, depth 16, kernel 7: the `paper` tier's "
             "`randmix_unshuffler_512_16`) reconstructs near-perfectly on Fashion-MNIST and works on CIFAR (the "
             "`paper` tier tries it on cifar10-jpeg): the medium tier trains the smaller `randmix_unshuffler_64_8` "
             "(width 64, depth 8) on Fashion-MNIST alone, so "
             f"a mean SSIM short of near-perfect ({NEAR_PERFECT_SSIM:g}, or half the gap from the better baseline "
             "to 1 where that is higher) there says nothing about the paper's network, only how the "
             "variants compare at that size.",
    }


PAPER_SCALE_ONLY = _paper_scale_only()


class Verdict(str, Enum):
    SUPPORTED = "supported"
    OPPOSITE = "opposite"
    DIFFERS = "differs"
    NOT_SHOWN = "not shown"
    EQUIVALENT = "equivalent"
    NOT_EQUIVALENT = "not equivalent"
    UNDECIDED = "undecided"
    INSUFFICIENT_RUNS = "insufficient runs"
    NO_VERDICT = "no verdict"  # a claim's own check at a tier that cannot test it (NOT_EVIDENCE; claim 3's shortfall)
    NO_DATA = "no data"


@dataclass(frozen=True)
class Scale:
    """What a table was measured at: every verdict names it."""

    tier: str
    model: str
    dataset: str
    training: str | None  # "recipe convmixer-small-fmnist, 3 epochs" or "mse loss, 1 epoch"
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
    expected: bool  # the paper says first > second, at a tier that can test it (never in NOT_EVIDENCE)
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
    if attack.attack is Attack.NONE:
        return "none (clean)"
    if attack.attack is Attack.PGD:
        return f"PGD-{attack.n_iter or 100}"
    if attack.version in (AAVersion.STANDARD, AAVersion.PLUS):
        return f"AA {attack.version}"
    budget = [f"{v} {k}" for k, v in (("iter", attack.n_iter), ("queries", attack.n_queries)) if v is not None]
    return f"AA {attack.version}: {', '.join(attack.attacks)}" + (f" ({', '.join(budget)})" if budget else "")


def variant_label(mixing: Mixing, sigma: float) -> str:
    """A variant's name: its mixing, with the smoothing sigma when it has one."""
    return f"{mixing} (σ={sigma:g})" if mixing is Mixing.CHANS_SMOOTH or sigma else mixing.value


CLEAN_ONLY = "clean accuracy only: no attack was run"  # why_untrusted's one reason that leaves claim 1 open


def why_untrusted(result: RobustnessResult) -> str | None:
    """Why a robustness result may not be ranked or feed a verdict, or None when it may: it needs a
    gradient-masking sanity report that passed, no AutoAttack flag, and must not be marked unreliable."""
    rb = result.randmix
    flags = [*rb.autoattack_flags, *(rb.sanity.autoattack_flags if rb.sanity else [])]
    reasons = [f"AutoAttack flagged it: {'; '.join(flags)}"] if flags else []  # first: a flag says the most
    if rb.attack.attack is Attack.NONE:
        reasons.append(CLEAN_ONLY)
    elif rb.sanity is None:
        reasons.append("unchecked: no sanity report (randmix eval --sanity)")
    elif not rb.sanity.passed:
        reasons.append("sanity checks failed")
    if result.unreliable:
        reasons.append("marked unreliable")
    return "; ".join(reasons) or None


def clean_trusted(result: RobustnessResult) -> bool:
    """Whether a result's clean accuracy may feed claim 1: a trusted result's, or a clean-only one's (the medium
    tier measures `space` that way: no attack, so no gradient to mask) that nothing flagged or marked unreliable."""
    return why_untrusted(result) in (None, CLEAN_ONLY)


def tier_of(ref: CheckpointRef) -> str:
    """The tier whose ``randmix reproduce`` published a checkpoint (``checkpoints/<tier>/...``), else :data:`OTHER`."""
    parts = PurePosixPath(ref.path).parts
    return parts[1] if len(parts) > 2 and parts[0] == "checkpoints" and parts[1] in TIERS else OTHER


def families_of(families: Sequence[Family], claim: str) -> list[Family]:
    """The tables of one claim, in page order."""
    return [f for f in families if f.claim == claim]
