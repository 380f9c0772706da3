"""Calibration of :mod:`randmix_bench.statistics` on simulated runs that mimic real ones.

Each simulated run classifies n shared test points: point difficulty (logit ~ N(0.5, 2)) is common to every
run, each variant adds its own per-point interaction (N(0, 0.5) or N(0, 1)), each run a seed shift (N(0, 0.06)
on the logit: about 1-2 points of accuracy seed to seed) and per-point seed noise (N(0, 0.3)), then a
Bernoulli draw. With no true difference the variants are exchangeable, so the population difference is 0.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from randmix_bench import statistics
from randmix_bench.statistics import ALPHA, difference, holm, min_detectable


def simulate(rng: np.random.Generator, reps: int, variants: int, n: int, interaction: float = 0.5,
             shift: float = 0.0, seeds: int = 3) -> np.ndarray:
    """0/1 outcomes (reps, variants, seeds, n); variant 0 has its logits raised by ``shift``."""
    logit = (rng.normal(0.5, 2.0, (reps, 1, 1, n)).astype(np.float32)
             + rng.normal(0, interaction, (reps, variants, 1, n)).astype(np.float32)
             + rng.normal(0, 0.06, (reps, variants, seeds, 1)).astype(np.float32)
             + rng.normal(0, 0.3, (reps, variants, seeds, n)).astype(np.float32))
    logit[:, 0] += shift
    return rng.random(logit.shape, dtype=np.float32) < expit(logit)


def family_p(outcomes: np.ndarray, points: bool) -> np.ndarray:
    """Holm-adjusted p of every pair of variants, per replicate: (reps, pairs)."""
    values = outcomes.mean(-1)
    raw = [difference(outcomes[:, a], outcomes[:, b], points=True).p if points
           else difference(values[:, a], values[:, b]).p for a, b in combinations(range(outcomes.shape[1]), 2)]
    return holm(np.stack(raw, -1))


def bound(rate: float, reps: int) -> float:
    """The nominal rate plus two standard errors of a simulated rate: a real excess would show above it."""
    return rate + 2 * np.sqrt(rate * (1 - rate) / reps)


@pytest.mark.slow
@pytest.mark.parametrize(("n", "interaction", "reps"), [(500, 0.5, 1200), (1000, 1.0, 800)])
@pytest.mark.parametrize("points", [True, False])
def test_equal_variants_fire_at_most_five_percent_per_family(n: int, interaction: float, reps: int,
                                                             points: bool) -> None:
    """4 variants, 6 pairs, 3 seeds: a family with no true difference gets any significant verdict
    (supported, opposite or differs) at most ALPHA of the time."""
    outcomes = simulate(np.random.default_rng(n), reps, 4, n, interaction)
    seed_spread = 100 * outcomes.mean(-1).std(-1, ddof=1).mean()
    assert 0.5 < seed_spread < 2.5  # the seed-to-seed spread of real runs, in points
    fired = (family_p(outcomes, points) < ALPHA).any(-1).mean()
    assert fired <= ALPHA
    assert fired > 0  # the test is not just timid: it can fire at all


@pytest.mark.slow
def test_clean_accuracy_on_ten_thousand_points_is_calibrated() -> None:
    """Claim 1's setting: 3 variants on the whole 10,000-point test set."""
    reps = 200
    outcomes = simulate(np.random.default_rng(7), reps, 3, 10_000)
    assert (family_p(outcomes, True) < ALPHA).any(-1).mean() <= bound(ALPHA, reps)


def test_a_real_difference_is_found_and_the_detectable_difference_is_honest() -> None:
    """A true gap at least the stated minimum detectable difference is found at least 80 % of the time."""
    rng = np.random.default_rng(3)
    reps = 600
    outcomes = simulate(rng, reps, 2, 1000, shift=0.45)
    d = difference(outcomes[:, 0], outcomes[:, 1], points=True)
    true_gap = float(d.effect.mean())
    detectable = np.median([min_detectable(float(s), float(f)) for s, f in zip(d.se[:100], d.df[:100], strict=True)])
    assert 0.04 < true_gap and detectable <= true_gap  # a 4-plus-point gap, above what the model says it detects
    assert ((d.p < ALPHA) & (d.effect > 0)).mean() >= statistics.POWER


def test_pairing_removes_shared_point_difficulty() -> None:
    """Two variants that share the same per-point noise differ only by their runs' shifts: the per-point
    interaction is estimated near 0, so the interval is no wider than the seed-level one."""
    rng = np.random.default_rng(1)
    outcomes = simulate(rng, 200, 2, 1000, interaction=0.0)
    paired = difference(outcomes[:, 0], outcomes[:, 1], points=True)
    seed_level = difference(outcomes.mean(-1)[:, 0], outcomes.mean(-1)[:, 1])
    assert np.median(paired.se / seed_level.se) < 1.1


def test_seed_level_difference_is_scipys_welch_test() -> None:
    """Without per-point outcomes a pair is Welch's t-test on the run values: scipy's p, df and 95 % interval."""
    a, b = np.array([91.2, 92.0, 90.7, 91.9]), np.array([89.8, 90.9, 90.1])
    d, welch = difference(a, b), stats.ttest_ind(a, b, equal_var=False)
    assert (float(d.p), float(d.df)) == pytest.approx((welch.pvalue, welch.df))
    assert [float(x) for x in d.interval()] == pytest.approx(list(welch.confidence_interval(1 - ALPHA)))


def test_holm_matches_its_definition() -> None:
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, np.nan, 0.01]).tolist()[0] == pytest.approx(0.5)
    assert np.isnan(holm([0.5, np.nan, 0.01])[1])
    assert holm([0.9, 0.8]).max() <= 1


def test_equivalence_needs_the_interval_inside_the_margin() -> None:
    close = statistics.Difference(np.array(0.1), np.array(0.1), np.array(4.0))
    far = statistics.Difference(np.array(3.0), np.array(0.1), np.array(4.0))
    wide = statistics.Difference(np.array(0.1), np.array(2.0), np.array(4.0))
    assert statistics.equivalence(close, 1.0).p_inside < ALPHA
    assert statistics.equivalence(far, 1.0).p_outside < ALPHA
    unsure = statistics.equivalence(wide, 1.0)
    assert unsure.p_inside > ALPHA and unsure.p_outside > ALPHA
    # beyond the margin at ALPHA exactly when the 95 % interval is (either side, so the side is not a free pick)
    for sign in (1, -1):
        edge = statistics.Difference(np.array(sign * (1.0 + stats.t.ppf(1 - ALPHA / 2, 4.0) * 0.1)), np.array(0.1),
                                     np.array(4.0))
        assert statistics.equivalence(edge, 1.0).p_outside == pytest.approx(ALPHA)
        assert min(abs(x) for x in edge.interval()) == pytest.approx(1.0)


def test_too_few_runs_or_points_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        difference(np.zeros((3, 1)), np.zeros((3, 1)), points=True)
    with pytest.raises(ValueError, match="at least 2 runs"):
        difference([0.5], [0.4, 0.6])


def test_identical_runs_give_no_p_value() -> None:
    d = difference([0.5, 0.5, 0.5], [0.4, 0.4, 0.4])
    assert np.isnan(d.p) and np.isnan(min_detectable(float(d.se), float(d.df)))
