"""Claim verdicts as data: the statistical rule's error rate, what counts as a run, and how variants are grouped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from randmix_bench import claims
from randmix_bench.claims import ClaimVerdict, Runs, Verdict, compare


def find(verdicts: list[ClaimVerdict], claim: str, variants: tuple[str, ...] = (),
         setting: str | None = None) -> ClaimVerdict:
    (v,) = [v for v in verdicts
            if v.claim == claim and v.variants == variants and (setting is None or v.setting == setting)]
    return v


def simulate(true: tuple[float, float], spread: float, runs: int, reps: int, n: int = 10_000) -> dict[Verdict, float]:
    """How often each verdict comes out for "b > a" when each run's true accuracy scatters around ``true``
    by ``spread`` (training seeds) and is measured on ``n`` points."""
    rng = np.random.default_rng(0)
    counts = dict.fromkeys(Verdict, 0)
    for _ in range(reps):
        a, b = (Runs(tuple(rng.binomial(n, np.clip(rng.normal(p, spread, runs), 0, 1)) / n), n, runs) for p in true)
        counts[compare(b, a).verdict] += 1
    return {v: c / reps for v, c in counts.items()}


@pytest.mark.parametrize("spread", [0.01, 0.02])
def test_equal_variants_are_called_different_at_most_at_the_nominal_rate(spread: float) -> None:
    reps = 4000  # the rate's simulation error is about ±0.003
    rates = simulate((0.6, 0.6), spread, runs=3, reps=reps)
    assert rates[Verdict.SUPPORTED] <= claims.ALPHA / 2 + 3 * np.sqrt(0.025 * 0.975 / reps)
    assert rates[Verdict.CONTRADICTED] <= claims.ALPHA / 2 + 3 * np.sqrt(0.025 * 0.975 / reps)
    assert rates[Verdict.INCONCLUSIVE] >= 1 - claims.ALPHA - 0.01


def test_a_real_difference_is_found_and_few_runs_give_no_verdict() -> None:
    assert simulate((0.55, 0.6), 0.015, runs=3, reps=500)[Verdict.SUPPORTED] > 0.5  # the rule is not just timid
    for runs in (1, 2):
        assert simulate((0.4, 0.6), 0.015, runs=runs, reps=20)[Verdict.INSUFFICIENT_RUNS] == 1


def test_runs_are_training_seeds_not_evaluations(robust_result: Callable[..., Any]) -> None:
    # the same training run evaluated twice (more points) counts once, so full has 2 runs: no verdict
    results = [robust_result("full", s, 0.8, 0.1, n=n) for s, n in ((0, 1000), (0, 10_000), (1, 10_000))]
    results += [robust_result("chans", s, 0.8, 0.3) for s in (0, 1, 2)]
    v = find(claims.evaluate(results), "2a", ("chans", "full"))
    assert v.runs == (3, 2) and v.verdict is Verdict.INSUFFICIENT_RUNS
    results.append(robust_result("full", 2, 0.8, 0.1))
    v = find(claims.evaluate(results), "2a", ("chans", "full"))
    assert v.runs == (3, 3) and v.verdict is Verdict.SUPPORTED and "mixer_seed fixed at 0" in v.reason
    unseeded = ([robust_result("chans", None, 0.8, 0.3 + i / 100) for i in range(3)]
                + [robust_result("full", s, 0.8, 0.1) for s in range(3)])
    assert find(claims.evaluate(unseeded), "2a", ("chans", "full")).verdict is Verdict.INSUFFICIENT_RUNS


def test_smoothing_sigmas_and_eps_are_separate_variants(robust_result: Callable[..., Any]) -> None:
    """chans-smooth with sigma 1 and 3 are different models: never averaged as if they were seeds."""
    results = [robust_result("chans", s, 0.8, 0.20 + s / 1000) for s in range(3)]
    results += [robust_result("chans-smooth", s, 0.8, 0.21 + s / 1000, sigma=1) for s in range(3)]
    results += [robust_result("chans-smooth", s, 0.8, 0.50 + s / 1000, sigma=3) for s in range(3)]
    results += [robust_result("chans", s, 0.8, 0.05, eps=16 / 255) for s in range(3)]
    verdicts = claims.evaluate(results)
    weak = find(verdicts, "2b", ("chans-smooth (σ=1)", "chans"), "Linf 0.0314, AA standard")
    strong = find(verdicts, "2b", ("chans-smooth (σ=3)", "chans"), "Linf 0.0314, AA standard")
    assert weak.means == pytest.approx((21.1, 20.1)) and strong.means == pytest.approx((50.1, 20.1))
    assert weak.runs == strong.runs == (3, 3)
    assert weak.verdict is Verdict.SUPPORTED and strong.verdict is Verdict.SUPPORTED
    other_eps = find(verdicts, "2b", setting="Linf 0.0627, AA standard")
    assert other_eps.verdict is Verdict.NO_DATA  # the eps=16/255 chans runs are not pooled with eps=8/255


def test_runs_of_different_trainings_are_separate_variants(robust_result: Callable[..., Any]) -> None:
    """Runs trained with another recipe or for other epochs are another variant, never extra seeds."""
    short, long = ("quick", 2), ("quick", 20)
    results = [robust_result(m, s, 0.8, 0.2, training=short) for m in ("full", "chans") for s in range(2)]
    results += [robust_result(m, 2, 0.8, 0.2, training=long) for m in ("full", "chans")]
    verdicts = [v for v in claims.evaluate(results) if v.claim == "2a"]
    assert sorted(v.setting for v in verdicts) == ["recipe quick, 2 epochs; Linf 0.0314, AA standard",
                                                   "recipe quick, 20 epochs; Linf 0.0314, AA standard"]
    assert sorted(v.runs for v in verdicts) == [(1, 1), (2, 2)]
    assert all(v.verdict is Verdict.INSUFFICIENT_RUNS for v in verdicts)


def test_claim1_uses_the_whole_test_set_accuracy(robust_result: Callable[..., Any]) -> None:
    # on the attacked subset chans looks 10 points worse; on the whole test set both are at 80 %
    results = [robust_result(m, s, clean, 0.1, full_test=0.80 + s / 1000, n=5000)
               for m, clean in (("full", 0.85), ("chans", 0.75)) for s in range(3)]
    v = find(claims.evaluate(results), "1a", ("chans", "full"))
    assert v.means == pytest.approx((80.1, 80.1)) and v.verdict is Verdict.SUPPORTED
    subset_only = [robust_result(m, s, clean + s / 1000, 0.1)
                   for m, clean in (("full", 0.85), ("chans", 0.75)) for s in range(3)]
    assert find(claims.evaluate(subset_only), "1a", ("chans", "full")).verdict is Verdict.CONTRADICTED


def test_unchecked_results_feed_no_verdict(robust_result: Callable[..., Any]) -> None:
    results = ([robust_result("full", s, 0.8, 0.1) for s in range(3)]
               + [robust_result("chans", s, 0.8, 0.3, sanity=None) for s in range(3)])
    v = find(claims.evaluate(results), "2a")
    assert v.verdict is Verdict.NO_DATA and v.variants == ()


@pytest.mark.parametrize(("ssims", "mean_image", "verdict"), [
    ((0.70, 0.71, 0.72), (20.0, 0.3), Verdict.SUPPORTED),  # beats both baselines, closes half the gap to 1
    ((0.40, 0.41, 0.42), (20.0, 0.3), Verdict.CONTRADICTED),  # beats the scrambled input, not the mean image
    ((0.70, 0.71, 0.72), None, Verdict.NO_DATA),
])
def test_claim3_must_beat_the_mean_image_too(ssims: tuple[float, ...], mean_image: tuple[float, float] | None,
                                              verdict: Verdict, shuffle_result: Callable[..., Any]) -> None:
    results = [shuffle_result(s, ssim, 25.0 + s / 10, mean_image) for s, ssim in enumerate(ssims)]
    (v,) = claims.evaluate(results)
    assert v.claim == "3" and v.verdict is verdict


def test_claim3_needs_three_runs(shuffle_result: Callable[..., Any]) -> None:
    (v,) = claims.evaluate([shuffle_result(0, 0.9, 30.0), shuffle_result(1, 0.9, 30.0)])
    assert v.verdict is Verdict.INSUFFICIENT_RUNS and v.runs == (2,)


@pytest.mark.parametrize(("full_test", "verdict"), [(True, Verdict.SUPPORTED), (False, Verdict.INCONCLUSIVE)])
def test_whole_test_set_accuracy_is_floored_at_the_whole_test_sets_binomial(
        full_test: bool, verdict: Verdict, robust_result: Callable[..., Any]) -> None:
    """Claim 1 reads the trainer's accuracy on all 10,000 test images when it is recorded: its noise floor is
    that of 10,000 points, not of the 500 attacked ones, so a 1-point gap over 3 tight runs is resolved."""
    runs = [("full", s, 0.900 + d) for s, d in enumerate((0.0, 0.001, -0.001))]
    runs += [("chans", s, 0.890 + d) for s, d in enumerate((0.0, 0.001, -0.001))]
    results = [robust_result(m, s, acc, 0.3, n=500, full_test=acc if full_test else None) for m, s, acc in runs]
    assert find(claims.evaluate(results), "1a", ("chans", "full")).verdict is verdict
