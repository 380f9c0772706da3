"""Claim verdicts as data: what counts as a run, how variants and studies are grouped, and the verdict words."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from randmix_bench import claims, findings, loss_curve, verdicts
from randmix_bench.claims import Family, Verdict
from randmix_bench.entries import Entry
from randmix_bench.results import CheckpointRef, Points, RobustnessResult
from randmix_bench.vocab import Mixing


def at(tier: str, r: Any) -> Any:
    """``r`` as published by ``tier`` (its checkpoint under checkpoints/<tier>/); for the `other` tier, as a user's
    own evaluation writes it (its checkpoint beside it)."""
    if tier == claims.OTHER:
        assert claims.tier_of(r.randmix.checkpoint if isinstance(r, RobustnessResult) else r.checkpoint) == tier
        return r
    block = r.randmix if isinstance(r, RobustnessResult) else r
    ref = block.checkpoint.model_copy(update={"path": f"checkpoints/{tier}/{block.checkpoint.sha256}.safetensors"})
    if isinstance(r, RobustnessResult):
        return r.model_copy(update={"randmix": block.model_copy(update={"checkpoint": ref})})
    return r.model_copy(update={"checkpoint": ref})


def table(families: list[Family], claim: str, setting: str | None = None) -> Family:
    (f,) = [f for f in families if f.claim == claim and (setting is None or f.scale.setting == setting)]
    return f


def row(f: Family, first: str, second: str) -> claims.Comparison:
    (r,) = [r for r in f.rows if {r.first, r.second} == {first, second}]
    return r


def with_points(r: RobustnessResult, robust: np.ndarray, clean: np.ndarray | None = None,
                full_test: np.ndarray | None = None, sha: str | None = None) -> RobustnessResult:
    """``r`` with per-point outcomes (and the whole test set's, and another checkpoint digest) set."""
    clean = np.ones_like(robust) if clean is None else clean
    points = Points(indices=list(range(len(robust))), clean=clean.astype(int).tolist(),
                    robust=robust.astype(int).tolist())
    rb = r.randmix.model_copy(update={
        "points": points, "n_examples": len(robust), "robust_acc": float(robust.mean()),
        "clean_acc": float(clean.mean()),
        "full_test_clean": None if full_test is None else full_test.astype(int).tolist(),
        "checkpoint": r.randmix.checkpoint.model_copy(update={"weights_sha256": sha})})
    return r.model_copy(update={"randmix": rb})


def test_a_checkpoint_reached_through_two_files_is_one_run(robust_result: Callable[..., Any]) -> None:
    """The run is the checkpoint (its weights digest), not train_seed and not the file: re-evaluating a
    checkpoint on more points does not add a run; the evaluation on the most points stands for it."""
    results = [robust_result("full", s, 0.8, 0.1 + s / 100, n=5_000) for s in range(3)]
    results += [robust_result("chans", s, 0.8, 0.3 + s / 100, n=5_000) for s in range(3)]
    again = robust_result("full", 0, 0.8, 0.5, n=10_000)  # another file: same weights digest as full-s0
    digest = "w-full-0"
    results[0] = results[0].model_copy(update={"randmix": results[0].randmix.model_copy(update={
        "points": None, "checkpoint": results[0].randmix.checkpoint.model_copy(update={"weights_sha256": digest})})})
    again = again.model_copy(update={"randmix": again.randmix.model_copy(update={
        "checkpoint": again.randmix.checkpoint.model_copy(update={"weights_sha256": digest})})})
    r = row(table(verdicts.evaluate([*results, again]), "2"), "chans", "full")
    assert r.runs == (3, 3) and r.means[1] == pytest.approx(100 * (0.5 + 0.11 + 0.12) / 3)


def test_fewer_than_three_runs_get_no_test(robust_result: Callable[..., Any]) -> None:
    results = [robust_result("full", s, 0.8, 0.1) for s in range(2)] + [robust_result("chans", s, 0.8, 0.3)
                                                                       for s in range(3)]
    r = row(table(verdicts.evaluate(results), "2"), "chans", "full")
    assert r.verdict is Verdict.INSUFFICIENT_RUNS and np.isnan(r.p) and r.runs == (3, 2)


def test_runs_that_agree_exactly_get_no_test_and_say_why(robust_result: Callable[..., Any]) -> None:
    """Every point broken for every seed of both variants (as a large eps can do): no spread, so no p-value and no
    detectable difference; the table says what its `not shown` means rather than leave a bare dash."""
    nothing = np.zeros(50)
    results = [at("medium", with_points(robust_result(m, s, 0.8, 0.0), nothing, sha=f"w-{m}-{s}"))
               for m in ("full", "chans") for s in range(3)]
    f = table(verdicts.evaluate(results), "2")
    r = row(f, "chans", "full")
    assert r.verdict is Verdict.NOT_SHOWN and np.isnan(r.p) and np.isnan(r.detectable) and r.effect == 0
    text = "\n".join(findings._familytable(f, "###"))
    assert "No test for `chans` > `full`: the standard error is 0" in text
    assert "Minimum detectable difference" not in text
    fewer = [at("medium", robust_result(m, s, 0.8, 0.3 + s / 100)) for m, k in (("full", 2), ("chans", 3))
             for s in range(k)]
    assert "No test for" not in "\n".join(findings._familytable(table(verdicts.evaluate(fewer), "2"), "###"))


def test_directions_give_supported_and_opposite_and_never_contradicted(robust_result: Callable[..., Any]) -> None:
    """A significant deficit of space is `supported` for "space is worse", with its size shown; a significant
    loss of chans' robustness is `opposite`; a significant gap the paper names no direction for `differs`."""
    def run(mixing: str, seed: int, full_test: float, robust: float) -> Any:
        return robust_result(mixing, seed, 0.8, robust + seed / 1000, full_test=full_test + seed / 1000)
    results = [run("full", s, 0.870, 0.50) for s in range(3)] + [run("chans", s, 0.866, 0.40) for s in range(3)]
    results += [run("space", s, 0.858, 0.45) for s in range(3)]
    families = verdicts.evaluate([at("medium", r) for r in results])
    clean, robust = table(families, "1"), table(families, "2")
    worse = row(clean, "chans", "space")
    assert (worse.first, worse.verdict) == ("chans", Verdict.SUPPORTED) and worse.effect == pytest.approx(0.8)
    assert row(robust, "chans", "full").verdict is Verdict.OPPOSITE
    assert row(robust, "full", "space").verdict is Verdict.DIFFERS
    assert not {"contradicted", "inconclusive"} & {r.verdict.value for f in families for r in f.rows}


@pytest.mark.parametrize("tier", sorted(claims.NOT_EVIDENCE))
def test_a_tier_that_cannot_test_the_claims_never_supports_or_contradicts_them(
        tier: str, robust_result: Callable[..., Any], shuffle_result: Callable[..., Any]) -> None:
    """The same significant numbers that read `supported` / `opposite` / `not equivalent` at a tier that can test the
    claims read `differs` (or `no verdict` for a claim's own check) on the small and smoke tiers, and for entries no
    tier published (a user's own run of any size, its scale not declared), numbers kept."""
    def run(mixing: str, seed: int, full_test: float, robust: float) -> Any:
        return robust_result(mixing, seed, 0.8, robust + seed / 1000, full_test=full_test + seed / 1000)
    results = [run("full", s, 0.900, 0.50) for s in range(3)] + [run("chans", s, 0.850, 0.40) for s in range(3)]
    results += [run("space", s, 0.800, 0.45) for s in range(3)]
    results += [shuffle_result(s, 0.40 + s / 1000, 20.0 + s / 100).model_copy(update={"mixing": Mixing.CHANS})
                for s in range(3)]
    for where, words in (("medium", {Verdict.SUPPORTED, Verdict.OPPOSITE, Verdict.NOT_EQUIVALENT}),
                         (tier, {Verdict.DIFFERS, Verdict.NO_VERDICT})):
        families = verdicts.evaluate([at(where, r) for r in results])
        said = {r.verdict for f in families for r in f.rows} | {c.verdict for f in families for c in f.checks}
        assert {f.scale.tier for f in families} == {where}
        assert words <= said and not said & {Verdict.SUPPORTED, Verdict.OPPOSITE, Verdict.EQUIVALENT,
                                             Verdict.NOT_EQUIVALENT} - words
        assert row(table(families, "1"), "chans", "space").effect == pytest.approx(5.0)  # the numbers stay


def test_the_claims_summary_names_only_the_tiers_it_leaves_out(robust_result: Callable[..., Any]) -> None:
    """The README's claims summary says which tiers it leaves out, and why: only those the entries have, so its link
    to their tables never promises a table FINDINGS.md does not have."""
    def entries(*tiers: str) -> list[Entry]:
        results = [at(t, robust_result(m, s, 0.8, 0.3 + s / 100, full_test=(0.85 if m == "full" else 0.8) + s / 1000))
                   for t in tiers for m in ("full", "space") for s in range(3)]
        return [Entry(Path(f"{r.name}.json"), f"{r.name}.json", r, Path("x.safetensors")) for r in results]

    def left_out(section: list[str]) -> str:
        (line,) = [line for line in section if line.startswith("Not listed")]
        return line

    small = findings.claims_section(entries("small"), "##")
    assert left_out(small).startswith("Not listed: the small tier, too small to test the claims (its tables, ")
    assert not any("smoke" in line or "**supported**" in line for line in small)
    both = left_out(findings.claims_section(entries("small", "smoke"), "##"))
    assert both.startswith("Not listed: the small and smoke tiers, too small to test the claims (their tables, ")
    own = left_out(findings.claims_section(entries("other"), "##"))
    assert own.startswith("Not listed: entries no randmix reproduce tier published, since nothing declares their "
                          "scale (their tables, ")
    two = left_out(findings.claims_section(entries("small", "other"), "##"))
    assert two.startswith(f"Not listed: the small tier, too small to test the claims, and {findings.UNDECLARED} "
                          "(their tables, ")
    three = left_out(findings.claims_section(entries("other", "small", "smoke"), "##"))
    assert three.startswith("Not listed: the small and smoke tiers, too small to test the claims, and "
                            f"{findings.UNDECLARED} (their tables, ")
    medium = findings.claims_section(entries("medium"), "##")
    assert not any(line.startswith("Not listed") for line in medium)
    assert any(line.startswith("- Claim 1, medium tier") and "**supported**" in line for line in medium)


def test_smoothing_sigmas_and_eps_are_separate_variants(robust_result: Callable[..., Any]) -> None:
    """chans-smooth with sigma 1 and 3 are different models: never averaged as if they were seeds."""
    results = [robust_result("chans", s, 0.8, 0.20 + s / 1000) for s in range(3)]
    results += [robust_result("chans-smooth", s, 0.8, 0.21 + s / 1000, sigma=1) for s in range(3)]
    results += [robust_result("chans-smooth", s, 0.8, 0.50 + s / 1000, sigma=3) for s in range(3)]
    results += [robust_result("chans", s, 0.8, 0.05, eps=16 / 255) for s in range(3)]
    families = verdicts.evaluate([at("medium", r) for r in results])
    main = table(families, "2", "Linf 0.0314, AA standard")
    weak, strong = row(main, "chans-smooth (σ=1)", "chans"), row(main, "chans-smooth (σ=3)", "chans")
    assert weak.means == pytest.approx((21.1, 20.1)) and strong.means == pytest.approx((50.1, 20.1))
    assert weak.verdict is Verdict.SUPPORTED and strong.verdict is Verdict.SUPPORTED and weak.expected
    assert table(families, "2", "Linf 0.0627, AA standard").rows == ()  # one variant at 16/255: nothing to compare


def test_runs_of_different_trainings_are_separate_studies(robust_result: Callable[..., Any]) -> None:
    short, long = ("quick", 2), ("quick", 20)
    results = [robust_result(m, s, 0.8, 0.2, training=short) for m in ("full", "chans") for s in range(2)]
    results += [robust_result(m, 2, 0.8, 0.2, training=long) for m in ("full", "chans")]
    families = [f for f in verdicts.evaluate(results) if f.claim == "2"]
    assert sorted(f.scale.training or "" for f in families) == ["recipe quick, 2 epochs", "recipe quick, 20 epochs"]
    assert sorted(f.rows[0].runs for f in families) == [(1, 1), (2, 2)]


def test_claim1_uses_the_whole_test_set_per_point_when_recorded(robust_result: Callable[..., Any]) -> None:
    """On the attacked subset chans looks 10 points worse; on the whole test set both are at 80 %."""
    rng = np.random.default_rng(0)
    shared = rng.random(10_000) < 0.8
    results = []
    for m, clean in (("full", 0.85), ("chans", 0.75)):
        for s in range(3):
            r = robust_result(m, s, clean, 0.1, n=20)
            flips = rng.random(10_000) < 0.02
            results.append(with_points(r, np.r_[np.ones(2), np.zeros(18)], np.r_[np.ones(int(clean * 20)),
                           np.zeros(20 - int(clean * 20))], full_test=shared ^ flips))
    f = table(verdicts.evaluate([at("medium", r) for r in results]), "1")
    assert f.per_point and f.scale.points == (10_000, 10_000) and "whole test set" in f.measure
    assert abs(row(f, "chans", "full").effect) < 0.5
    (check,) = f.checks
    assert check.verdict is Verdict.EQUIVALENT and check.label == f"equivalent within ±{claims.NEARLY_PP:g}"


@pytest.mark.parametrize(("gap", "spread", "verdict"), [
    (0.001, 0.001, Verdict.EQUIVALENT), (0.03, 0.001, Verdict.NOT_EQUIVALENT), (0.005, 0.02, Verdict.UNDECIDED)])
def test_nearly_matches_is_an_equivalence_test(gap: float, spread: float, verdict: Verdict,
                                              robust_result: Callable[..., Any]) -> None:
    offsets = (-spread, 0.0, spread)
    results = [robust_result("full", s, 0.8, 0.1, full_test=0.9 + d) for s, d in enumerate(offsets)]
    results += [robust_result("chans", s, 0.8, 0.1, full_test=0.9 - gap + d) for s, d in enumerate(offsets)]
    (check,) = table(verdicts.evaluate([at("medium", r) for r in results]), "1").checks
    assert check.verdict is verdict


def test_per_point_outcomes_are_used_only_when_every_run_has_them(robust_result: Callable[..., Any]) -> None:
    rng = np.random.default_rng(1)
    results = [with_points(robust_result(m, s, 1.0, 0.5), rng.random(200) < p)
               for m, p in (("full", 0.5), ("chans", 0.6)) for s in range(3)]
    f = table(verdicts.evaluate(results), "2")
    assert f.per_point and f.scale.points == (200, 200)
    assert not table(verdicts.evaluate([*results[:-1], robust_result("chans", 9, 1.0, 0.6)]), "2").per_point


def test_unchecked_results_feed_no_verdict(robust_result: Callable[..., Any]) -> None:
    results = ([robust_result("full", s, 0.8, 0.1) for s in range(3)]
               + [robust_result("chans", s, 0.8, 0.3, sanity=None) for s in range(3)])
    assert table(verdicts.evaluate(results), "2").rows == ()


def test_tiers_come_from_the_checkpoint_folder_and_lead_in_order(robust_result: Callable[..., Any]) -> None:
    def at(r: RobustnessResult, path: str) -> RobustnessResult:
        return r.model_copy(update={"randmix": r.randmix.model_copy(update={
            "checkpoint": r.randmix.checkpoint.model_copy(update={"path": path})})})
    small = [at(robust_result(m, s, 0.8, 0.2), f"checkpoints/small/{m}{s}.safetensors")
             for m in ("full", "chans") for s in range(3)]
    medium = [at(robust_result(m, s, 0.8, 0.2, training=("m", 10)), f"checkpoints/medium/{m}{s}.safetensors")
              for m in ("full", "chans") for s in range(3)]
    assert [f.scale.tier for f in verdicts.evaluate(small + medium)] == ["medium", "medium", "small", "small"]
    assert claims.tier_of(robust_result("full", 0, 0.8, 0.2).randmix.checkpoint) == "other"


@pytest.mark.parametrize(("ssims", "mean_image", "verdict"), [
    ((0.70, 0.71, 0.72), (20.0, 0.3), Verdict.SUPPORTED),  # beats both baselines, closes half the gap to 1
    ((0.40, 0.41, 0.42), (20.0, 0.3), Verdict.NO_VERDICT),  # beats both baselines but closes less than half the
    # gap to 1: short, which below the paper tier is no verdict (see the test below)
    ((0.70, 0.71, 0.72), None, Verdict.NO_DATA),
])
def test_claim3_must_beat_the_mean_image_too(ssims: tuple[float, ...], mean_image: tuple[float, float] | None,
                                              verdict: Verdict, shuffle_result: Callable[..., Any]) -> None:
    results = [at("medium", shuffle_result(s, ssim, 25.0 + s / 10, mean_image)) for s, ssim in enumerate(ssims)]
    ssim, psnr = verdicts.evaluate(results)
    assert (ssim.measure, psnr.measure) == ("SSIM", "PSNR") and ssim.checks[0].verdict is verdict


@pytest.mark.parametrize(("ssims", "verdict"), [((0.970, 0.971, 0.972), Verdict.SUPPORTED),
                                                 ((0.955, 0.956, 0.957), Verdict.NO_VERDICT)])
def test_near_perfect_also_closes_half_the_gap(ssims: tuple[float, ...], verdict: Verdict,
                                               shuffle_result: Callable[..., Any]) -> None:
    """Near-perfect is "works" and SSIM >= 0.95: beside a mean image of SSIM 0.92, 0.955 clears 0.95 but not the
    0.96 that closes half the gap to 1."""
    results = [at("medium", shuffle_result(s, ssim, 25.0 + s / 10, (20.0, 0.92), dataset="fashion-mnist"))
               for s, ssim in enumerate(ssims)]
    ssim, _ = verdicts.evaluate(results)
    assert ssim.checks[0].statement.endswith("near-perfect on fashion-mnist") and ssim.checks[0].verdict is verdict


@pytest.mark.parametrize(("tier", "traces", "verdict"), [
    ("paper", ("flat", "flat", "flat"), Verdict.OPPOSITE),
    ("paper", ("flat", "flat", "falling"), Verdict.NO_VERDICT),  # one run still learning is enough
    ("paper", ("flat", "flat", None), Verdict.NO_VERDICT),  # a run without a trace is no evidence of a flat loss
    ("paper-slice", ("flat", "flat", "flat"), Verdict.NO_VERDICT),
    ("medium", ("flat", "flat", "flat"), Verdict.NO_VERDICT),
    ("other", ("flat", "flat", "flat"), Verdict.NO_VERDICT)])
def test_claim3_falls_short_only_for_the_papers_network_trained_until_flat(
        tier: str, traces: tuple[str | None, ...], verdict: Verdict, shuffle_result: Callable[..., Any]) -> None:
    """Short of the near-perfect SSIM is `opposite` only at the paper tier with every chans run's loss flattened: a
    smaller network, or one still learning (or not known to have stopped), says nothing about what the paper's
    reaches."""
    def trace(kind: str | None) -> list[list[float]] | None:  # the last fifth (3 points) falls 19 % or 0.2 %
        drop = {"falling": 0.9, "flat": 0.999, None: None}[kind]
        return None if drop is None else [[i / 10, drop ** max(0, i - 5)] for i in range(1, 11)]

    results = [shuffle_result(s, 0.80 + s / 100, 25.0, (20.0, 0.3), dataset="fashion-mnist").model_copy(update={
        "train_loss": trace(kind), "checkpoint": CheckpointRef(path=f"checkpoints/{tier}/s{s}.safetensors",
                                                               sha256=f"{s:064x}")})
        for s, kind in enumerate(traces)]
    (ssim, _) = [f for f in verdicts.evaluate(results) if f.scale.tier == tier]
    assert ssim.checks[0].statement.endswith("near-perfect on fashion-mnist") and ssim.checks[0].verdict is verdict
    assert ssim.checks[0].detail.startswith("SSIM 0.1400 below its threshold")  # a shortfall, not "-0.14 above"


def test_claim3_compares_every_unshuffler_pair(shuffle_result: Callable[..., Any]) -> None:
    results = [shuffle_result(s, 0.7 + s / 100, 25.0 + s / 10) for s in range(3)]
    results += [r.model_copy(update={"mixing": Mixing.FULL, "ssim": r.ssim + 0.1, "checkpoint": r.checkpoint.model_copy(
        update={"sha256": f"{0xf0 + r.train_seed:064x}"})}) for r in results]
    ssim = verdicts.evaluate(results)[0]
    (r,) = ssim.rows
    assert (r.first, r.second, r.verdict) == ("full", "chans", Verdict.DIFFERS) and r.effect == pytest.approx(0.1)


def test_claim3_needs_three_runs(shuffle_result: Callable[..., Any]) -> None:
    ssim, _ = verdicts.evaluate([shuffle_result(0, 0.9, 30.0), shuffle_result(1, 0.9, 30.0)])
    assert ssim.checks[0].verdict is Verdict.INSUFFICIENT_RUNS


def test_what_only_the_paper_scale_settles_names_what_the_tiers_below_it_run() -> None:
    """The words of claims.PAPER_SCALE_ONLY that are not read from the plans (datasets, models, the unshufflers) are
    checked against them here: a tier retuned without its text fails."""
    from randmix_bench.plans import TIERS, ShuffleStudy, Study
    from randmix_bench.recipes import get_recipe
    from randmix_bench.vocab import Tier

    below = [s for t in (Tier.MEDIUM, Tier.PAPER_SLICE) for s in TIERS[t] if isinstance(s, Study)]
    assert {s.dataset for s in below} == {"fashion-mnist"} and all("convmixer" in s.recipe for s in below)
    paper = [s for s in TIERS[Tier.PAPER] if isinstance(s, Study)]
    assert {s.dataset for s in paper} == {"fashion-mnist", "cifar10-jpeg"}
    assert any("resnet18" in s.recipe for s in paper)
    for study in (s for t in (Tier.MEDIUM, Tier.PAPER) for s in TIERS[t] if isinstance(s, ShuffleStudy)):
        assert f"`{get_recipe(study.recipe).model}`" in claims.PAPER_SCALE_ONLY["3"]
    for study in below[-1:] + paper:  # the paper-slice's protocol, the paper tier's eps
        assert f"Linf {study.eps.text}" in claims.PAPER_SCALE_ONLY["2"]
    assert f"{claims.NEAR_PERFECT_SSIM:g}" in claims.PAPER_SCALE_ONLY["3"]


def test_claim3_verdicts_say_when_training_had_not_flattened(shuffle_result: Callable[..., Any]) -> None:
    """A study whose runs' loss was still falling when training stopped carries that caveat once in its plain words
    and in the README's summary line, counting runs as the verdicts do (a second evaluation of a run is not another
    run; a run without a trace is not a flattened one); a study whose runs flattened carries none."""
    falling = [[x / 10, 1.0 - x / 200] for x in range(1, 101)]  # -9 % over the last fifth
    flat = [[x / 10, 1.0 + 1 / x] for x in range(1, 101)]  # -0.2 %
    assert loss_curve.trend(falling) is loss_curve.Trend.FALLING and loss_curve.trend(flat) is loss_curve.Trend.FLAT
    assert not any(loss_curve.trend(t) for t in (None, [], [[0.5, 1.0], [1.5, 0.5]]))  # no verdict: no caveat

    def entries(traces: list[list[list[float]] | None], again: bool = False) -> list[Entry]:
        results = [at("medium", shuffle_result(s, 0.7 + s / 100, 25.0 + s / 10).model_copy(update={"train_loss": t}))
                   for s, t in enumerate(traces)]
        results += [r.model_copy(update={"mixing": Mixing.FULL, "ssim": r.ssim + 0.1,
                                         "checkpoint": r.checkpoint.model_copy(
                                             update={"sha256": f"{0xf0 + r.train_seed:064x}"})})
                    for r in results]
        results += [r.model_copy(update={"name": f"{r.name}-again-{r.mixing}", "n_examples": 50})
                    for r in results if again]  # each run evaluated a second time, on fewer points
        return [Entry(Path(f"{r.name}.json"), f"{r.name}.json", r, Path("x.safetensors")) for r in results]

    def caveat(of: str, how: str = "still falling") -> str:
        return (f"training had not flattened in {of} ({how} when stopped after 10 epochs): these numbers "
                "compare equal training budgets, and longer training could change them")

    for again in (False, True):
        mixed = entries([falling, flat, falling], again)
        (plain,) = [line for line in findings.render_findings(mixed).splitlines() if line.startswith("In plain words")]
        assert plain.count(caveat("4 of 6 runs")) == 1  # once for the study, not per table
        (summary,) = [line for line in findings.claims_section(mixed, "##") if "Claim 3" in line]
        assert summary.endswith(caveat("4 of 6 runs") + ".")  # the SSIM line (PSNR has no pair the paper names)
    assert caveat("2 of the 2 runs that recorded a trace") in findings.render_findings(entries([falling, None, None]))
    assert "had not flattened" not in findings.render_findings(entries([flat, flat, flat]))
    rising = [[x / 10, 1.0 + x / 500] for x in range(1, 101)]  # +3.3 %: diverging is not flat either
    assert caveat("2 of 6 runs", "rising") in findings.render_findings(entries([rising, flat, flat]))
    both = findings.render_findings(entries([rising, falling, flat]))
    assert caveat("4 of 6 runs", "still falling or rising") in both
    assert "had not flattened" not in findings.render_findings(entries([None, None, None]))
