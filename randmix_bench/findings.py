"""The paper's claims against the entries, as Markdown: ``leaderboards/FINDINGS.md`` (every table of
:func:`randmix_bench.verdicts.evaluate`, in plain words too, and the gradient-masking controls) and the short
claims section shown under the leaderboard and in the top README (:func:`claims_section`, :func:`render_summary`).
"""

from __future__ import annotations

import math
import posixpath
from collections import defaultdict
from collections.abc import Callable

from randmix_bench import claims, figures, loss_curve, masking, verdicts
from randmix_bench.entries import Entry
from randmix_bench.markdown import Markdown, code, escape, heading, table
from randmix_bench.results import Provenance, RobustnessResult, ShuffleResult
from randmix_bench.vocab import n_epochs

__all__ = ["FINDINGS_NAME", "NO_RESULTS", "UNDECLARED", "counts", "claims_section", "render_findings", "render_summary"]

FINDINGS_NAME = "FINDINGS.md"


def counts(entries: list[Entry]) -> str:
    n_robust = sum(e.is_robustness for e in entries)
    return f"{n_robust} robustness and {len(entries) - n_robust} pixel-shuffle result(s)"


NO_RESULTS = ("**No results yet.** There is no result file under `leaderboards/`: nothing has been measured "
              "with this code yet, so the tables are empty and every claim says \"no data yet\". Entries appear "
              "when an evaluation writes its JSON, with the checkpoint beside it, into "
              "`leaderboards/<dataset>/<Linf|L2|shuffle>/`.")


UNDECLARED = f"{claims.OTHER_ENTRIES}, since nothing declares their scale"
"""Why entries of the `other` tier get no verdict, where a sentence names the tiers that get none."""


def _number(value: float, unit: str, sign: bool = True) -> str:
    digits = 4 if unit == "" else 2
    return "—" if math.isnan(value) else f"{value:{'+' if sign else ''}.{digits}f}"


def _p(p: float) -> str:
    return "—" if math.isnan(p) else "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _tier(tier: str) -> str:
    return f"{tier} tier ({claims.TIERS[tier]})" if tier != claims.OTHER else claims.TIERS[tier]


def _pair(row: claims.Comparison) -> Markdown:
    """``first > second`` when the paper expects first higher, else ``first − second``."""
    return Markdown(f"{code(row.first)} {'>' if row.expected else '−'} {code(row.second)}")


def _family_title(f: claims.Family) -> list[object]:
    return [_tier(f.scale.tier), f"claim {f.claim}, {f.measure}", f.scale.label()]


def _detectable(f: claims.Family) -> str:
    """What a ``not shown`` in this table cannot rule out."""
    values = sorted(r.detectable for r in f.rows if not math.isnan(r.detectable))
    if not values:
        return ""
    unit = f" {f.unit}" if f.unit else ""
    lo, hi = (_number(v, f.unit, False) for v in (values[0], values[-1]))
    span = lo if lo == hi else f"{lo}–{hi}"
    return (f"Minimum detectable difference: {span}{unit} (80 % power, two-sided {claims.ALPHA:g}/{f.tested} for "
            f"Holm's worst case over the {f.tested} tested pairs, from these runs' own spread): a `not shown` here "
            "cannot rule out a smaller difference.")


def _familytable(f: claims.Family, level: str) -> list[str]:
    lines = [heading(level, *_family_title(f)), ""]
    if not f.per_point and f.claim != "3":
        lines += ["*Seed-level only*: these result files carry no per-point outcomes, so the variant-by-point "
                  "interaction is not in the intervals (Welch's test on the run values).", ""]
    unit = f" ({f.unit})" if f.unit else ""
    if f.rows:
        rows = [[_pair(r), Markdown(" vs ".join(
                    _number(m, f.unit, False) + ("" if s is None else f" ± {_number(s, f.unit, False)}") + f" ({k})"
                    for m, s, k in zip(r.means, r.spreads, r.runs, strict=True))),
                 _number(r.effect, f.unit), f"[{_number(r.low, f.unit)}, {_number(r.high, f.unit)}]",
                 _p(r.p_holm), _number(r.detectable, f.unit, False), Markdown(f"**{r.verdict.value}**")]
                for r in f.rows]
        lines += table(["Pair", f"Means ± std (runs){unit}", f"Difference{unit}", "95 % interval", "p (Holm)",
                         "Detectable", "Verdict"], rows, right={2, 4, 5}) + [""]
    else:
        lines += ["Only one variant: no pair to compare.", ""]
    detectable = _detectable(f)
    lines += [detectable, ""] if detectable else []
    untestable = [_pair(r) for r in f.rows if math.isnan(r.p) and r.verdict is not claims.Verdict.INSUFFICIENT_RUNS]
    if untestable:
        lines += [f"No test for {', '.join(untestable)}: the standard error is 0 (every run of each variant scored "
                  "the same, with no variant-by-point spread), so `not shown` there neither shows nor rules out a "
                  "difference.", ""]
    lines += [f"- {c.statement}: **{c.label}**: {escape(c.detail)}." for c in f.checks]
    return lines + [""] if f.checks else lines


def _plain(f: claims.Family, caveat: str = "") -> str:
    """One sentence per table, in plain words, from its numbers (``caveat`` said last: what limits them)."""
    unit = f" {f.unit}" if f.unit else ""
    said = []
    for r in f.rows:
        if r.verdict is claims.Verdict.INSUFFICIENT_RUNS or not (r.expected or r.verdict is claims.Verdict.DIFFERS):
            continue
        size = f"{_number(r.effect, f.unit)}{unit} [{_number(r.low, f.unit)}, {_number(r.high, f.unit)}]"
        what = f"{r.first} {'above' if r.expected else 'vs'} {r.second}"
        said.append(f"{what}: {r.verdict.value} ({size})")
    untested = sum(r.verdict is claims.Verdict.INSUFFICIENT_RUNS for r in f.rows)
    if untested:  # never read as "no difference": these pairs were not tested at all
        said.insert(0, f"{'every pair' if untested == len(f.rows) else f'{untested} of {len(f.rows)} pairs'} "
                       f"untested, insufficient runs ({claims.MIN_RUNS} runs per variant are needed)")
    said += [f"{c.statement.replace('`', '')}: {c.label}" for c in f.checks]
    where = f"{f.scale.model} on {f.scale.dataset}" + (f", {f.scale.setting}" if f.scale.setting else "")
    tail = "; ".join(said) if said else "no significant difference after Holm"
    return f"{where}{_aside(f.scale.tier)}, {f.measure}: {tail}" + (f"; {caveat}" if caveat else "") + "."


def _aside(tier: str) -> str:
    """Why a plain-words sentence carries no verdict, after its study's name."""
    if tier in claims.TOO_SMALL:
        return " (smoke test only)"
    return " (no tier published it: scale not declared)" if tier == claims.OTHER else ""


def _summary_line(f: claims.Family, caveat: str = "") -> str:
    named = [f"{_pair(r)} **{r.verdict.value}** ({_number(r.effect, f.unit)})" for r in f.rows if r.expected]
    named += [f"{c.statement} **{c.label}**" for c in f.checks]
    named += [escape(caveat)] if caveat else []
    return (f"- Claim {f.claim}, {escape(_tier(f.scale.tier))}, {escape(f.scale.label())}: "
            + ("; ".join(named) if named else "no pair the paper names") + ".")


def _shuffles(entries: list[Entry]) -> list[ShuffleResult]:
    return [e.shuffle for e in entries if not e.is_robustness]


Study = tuple[str, str, str, str]
"""A claim-3 study as :func:`randmix_bench.verdicts.shuffle_study` names it: tier, model, dataset, training."""


def _studies(shuffles: list[ShuffleResult]) -> dict[Study, list[ShuffleResult]]:
    """The pixel-shuffle results per study, one per run (as the verdicts count them)."""
    studies: dict[Study, list[ShuffleResult]] = defaultdict(list)
    for r in verdicts.one_per_run(shuffles):
        studies[verdicts.shuffle_study(r)].append(r)
    return studies


def _still_falling(shuffles: list[ShuffleResult]) -> dict[Study, str]:
    """Per claim-3 study some of whose runs' loss was still falling (or rising) when training stopped, by
    :data:`randmix_bench.loss_curve.FLAT_RULE`: the caveat its verdicts carry, since more training could change
    them. Studies whose traced runs all flattened, or whose traces are too coarse or missing, carry none."""
    out = {}
    for study, runs in _studies(shuffles).items():
        traced = [r for r in runs if r.train_loss]
        trends = [loss_curve.trend(r.train_loss) for r in traced]
        falling = trends.count(loss_curve.Trend.FALLING)
        moving = falling + trends.count(loss_curve.Trend.RISING)
        if moving:
            of = f"{len(runs)} runs" if len(traced) == len(runs) else f"the {len(traced)} runs that recorded a trace"
            how = "still falling" if falling == moving else "still falling or rising" if falling else "rising"
            out[study] = (f"training had not flattened in {moving} of {of} ({how} when stopped after "
                          f"{n_epochs(runs[0].epochs)}): these numbers compare equal training budgets, and longer "
                          "training could change them")
    return out


def _caveat(f: claims.Family, falling: dict[Study, str]) -> str:
    """The caveat of ``f``'s study (see :func:`_still_falling`); none for the other claims."""
    if f.claim != "3":
        return ""
    return falling.get((f.scale.tier, f.scale.model, f.scale.dataset, f.scale.training or ""), "")


def claims_section(entries: list[Entry], level: str, findings: str = FINDINGS_NAME) -> list[str]:
    """The claims' named pairs per study, ``findings`` the link to FINDINGS.md from the page they go on."""
    lines = [f"{level} full vs chans vs space", "",
             f"The paper's claims (arXiv 2503.16760) against our entries, one line per study and measure: the pairs "
             f"the paper names, their verdict and difference. Every pair, interval, p-value and the method: "
             f"[{FINDINGS_NAME}]({findings}). Only ranked robustness entries count.", ""]
    families, falling = verdicts.evaluate(e.result for e in entries), _still_falling(_shuffles(entries))
    lines += [_summary_line(f, _caveat(f, falling)) for f in families if f.scale.tier not in claims.NOT_EVIDENCE
              if f.checks or any(r.expected for r in f.rows)]
    left_out = {f.scale.tier for f in families} & claims.NOT_EVIDENCE
    if left_out:  # the tiers these entries have, never one that has no table to point to
        toys = [t for t in claims.TOO_SMALL if t in left_out]
        tiers = f"the {' and '.join(toys)} tier{'s' if len(toys) > 1 else ''}"
        said = [f"{tiers}, too small to test the claims"] if toys else []
        if claims.OTHER in left_out:
            said.append(UNDECLARED)
        their = "its" if left_out == set(toys[:1]) else "their"  # one tier's tables; two tiers', or entries'
        lines += ["", f"Not listed: {', and '.join(said)} ({their} tables, without verdicts, are in "
                      f"[{FINDINGS_NAME}]({findings}))."]
    if not any(f.claim != "3" for f in families):
        lines += ["", "Claims 1 and 2: no data yet (no ranked robustness results)."]
    if not any(f.claim == "3" for f in families):
        lines += ["", "Claim 3: no data yet (no pixel-shuffle results)."]
    return lines


VERDICT_WORDS = [
    "`supported`: significant in the paper's direction after Holm; `opposite`: significant the other way; "
    "`differs`: significant on a pair the paper says nothing about (the sign of the difference says which is "
    "higher); `not shown`: none of these (the table's detectable difference says what it cannot rule out); "
    "`insufficient runs`: fewer than the runs a test needs.",
    "Equivalence (claim 1a): `equivalent within ±m`: the 90 % interval lies inside ±m; `not equivalent`: the "
    "difference is significantly beyond the margin (its 95 % interval lies outside ±m); `undecided`: neither.",
    "Nothing is called `supported`, `opposite`, `equivalent` or `not equivalent` at the "
    f"{' and '.join(claims.TOO_SMALL)} tiers, too small to test the claims, or for {UNDECLARED}: a significant "
    "difference reads `differs` and a claim's own check `no verdict`, with its numbers. Claim 3's own check also "
    "reads `no verdict` where falling short cannot count against the paper: below the `paper` tier's network, or "
    "while training was still falling.",
]


def _where(entries: list[Entry]) -> list[str]:
    """Where the numbers behind the findings were measured, from the results' own provenance."""
    def values(get: Callable[[Entry], object]) -> str:
        return ", ".join(sorted({escape(get(e)) for e in entries})) or "—"

    def provenance(e: Entry) -> Provenance:
        return e.randmix.provenance if e.is_robustness else e.shuffle.provenance

    return [f"- Devices: {values(lambda e: provenance(e).device)}; "
            f"torch {values(lambda e: provenance(e).versions.get('torch'))}; "
            f"commands: {values(lambda e: provenance(e).command)}.",
            f"- Datasets: {values(lambda e: e.randmix.dataset if e.is_robustness else e.shuffle.dataset)}; test points "
            f"per entry: {values(lambda e: e.randmix.n_examples if e.is_robustness else e.shuffle.n_examples)}.",
            f"- Measured {values(lambda e: provenance(e).date[:10])}, at commits "
            f"{values(lambda e: provenance(e).git_revision[:10] or 'unknown')}."]


def _control_table(checks: list[masking.ControlCheck]) -> list[str]:
    rows = [[code(c.entry), c.kind, f"{c.n:,}", f"{100 * c.whitebox_robust / c.n:.1f}",
             f"{100 * c.control_robust / c.n:.1f}", str(c.missed), Markdown("**flagged**") if c.flagged else "ok"]
            for c in sorted(checks, key=lambda c: (c.entry, c.kind))]
    return table(["Entry", "Control", "Points", "White-box robust %", "Control robust %", "Missed", ""], rows,
                 right=(2, 3, 4, 5)) + [""]


def _robust_table(f: claims.Family) -> tuple[str, str, str, str | None, str | None]:
    """The robust-accuracy table ``f`` is, as :func:`verdicts.robust_table` names a result's."""
    s = f.scale
    return s.tier, s.model, s.dataset, s.training, s.setting


def _controls_beside(f: claims.Family, checks: list[masking.ControlCheck],
                     results: dict[str, RobustnessResult]) -> list[str]:
    """Under a robust-accuracy table: the masking controls of its entries (a flagged one is not in the table)."""
    if f.claim != "2":
        return []
    where = _robust_table(f)
    mine = [c for c in checks if verdicts.robust_table(results[c.entry]) == where]
    if not mine:
        return []
    flagged = sorted({c.entry for c in mine if c.flagged})
    said = (f"{', '.join(flagged)} flagged and left out of the table above" if flagged
            else "no entry flagged")
    return [f"Gradient-masking controls of these entries ({said}):", ""] + _control_table(mine)


def _eps_chart(f: claims.Family, results: dict[str, RobustnessResult], drawn: dict[str, figures.Curve],
               shown: set[str]) -> list[str]:
    """Under a robust-accuracy table, the first time it comes: the chart of its entries' robust accuracy against eps
    (mean and seed band per variant), which ``randmix leaderboard`` draws under ``figures/``."""
    if f.claim != "2":
        return []
    where = _robust_table(f)
    stems = sorted({figures.curve_stem(r) for r in results.values() if verdicts.robust_table(r) == where}
                   & drawn.keys() - shown)
    shown.update(stems)
    return [figures.markdown_image(drawn[stem]) for stem in stems] + ([""] if stems else [])


def _flattening(shuffles: list[ShuffleResult]) -> list[str]:
    """Per pixel-shuffle study whose runs recorded a loss trace: whether each run's training loss had flattened
    (:data:`randmix_bench.loss_curve.FLAT_RULE`); studies without traces say nothing (their results predate them)."""
    said = [f"- {escape(_tier(tier))}, {escape(model)} on {escape(dataset)}, {escape(training)}: "
            + "; ".join(f"{code(r.name)} ({escape(claims.variant_label(r.mixing, r.smooth_sigma))}) "
                        f"{escape(loss_curve.flattened(r.train_loss))}" for r in sorted(runs, key=lambda r: r.name))
            + "."
            for (tier, model, dataset, training), runs in sorted(_studies(shuffles).items())
            if any(r.train_loss is not None for r in runs)]
    if not said:
        return []
    keep = 1 - loss_curve.FLAT_WINDOW  # a power law keeps (keep ** a) of its loss over any last window
    return [f"Had training flattened? By this rule: {escape(loss_curve.FLAT_RULE)} (the curves below). A loss that "
            "falls as a power of the epochs (loss ∝ epochs^−a) loses the same share over every last fifth however "
            f"long it trains ({100 * (1 - keep ** 0.2):.1f} % for a = 0.2): by this rule it flattens only if a is "
            f"below about {math.log(1 - loss_curve.FLAT_DROP) / math.log(keep):.2f}, or once its curve bends toward "
            "a floor.", "", *said, ""]


def _masking_section(checks: list[masking.ControlCheck]) -> list[str]:
    """The gradient-masking controls beside the verdicts: each white-box entry against its transfer and Square
    controls on their common points; a flagged entry feeds no verdict."""
    lines = ["## Gradient-masking controls", "",
             "Each white-box entry against the attacks that never use its gradient, on the points both attacked: "
             "APGD-CE examples made on the seed-matched `full` model (transfer) and Square alone (black-box). A model "
             "that masks its gradients keeps points robust that these weaker attacks break; an entry is **flagged** "
             "(and left out of every verdict above) when a control leaves fewer points robust than its white-box "
             "attacks. *Missed* counts the single points a control broke that the white-box attacks did not. A tier's "
             "cheaper attack set is also checked against AutoAttack standard on the same checkpoint (`AA standard`): "
             "it agrees when standard leaves at most one point of accuracy fewer robust on the common points.", ""]
    if not checks:
        return lines + ["No control has been run on these results yet (the medium tier runs them).", ""]
    return lines + _control_table(checks)


def render_findings(entries: list[Entry]) -> str:
    """``leaderboards/FINDINGS.md``: per claim, one table per study of all pairs, and the same in plain words, each
    robust-accuracy table with its entries' gradient-masking controls (a flagged entry feeds no verdict); every
    control again last."""
    results = {e.result.name: e.robustness for e in entries if e.is_robustness}
    checks = masking.controls(list(results.values()))
    flagged = {c.entry for c in checks if c.flagged}
    families = verdicts.evaluate(e.result for e in entries if not (e.is_robustness and e.result.name in flagged))
    lines = ["# Findings: the paper's claims against these results", "",
             "<!-- Generated by `randmix leaderboard` from the JSON files in this folder; do not edit by hand. -->", "",
             f"From {counts(entries)} (ranked robustness entries only, and clean-only ones for claim 1; see "
             "[README.md](README.md) for the tables and figures).", ""]
    lines += _where(entries) + [""] if entries else [NO_RESULTS, ""]
    lines += ["How to read it: each table compares every pair of variants of one study (same tier, model, dataset, "
              "recipe and epochs; for robust accuracy also threat model, eps and attack), the first minus the second "
              "(first = the variant the paper expects to be higher, when it says). The 95 % interval is each pair's "
              "own, not adjusted for the table's other pairs, so it can exclude 0 where the Holm-adjusted p stays "
              f"above {claims.ALPHA:g}: the verdict follows the Holm p. Tiers lead in the order "
              + ", ".join(t for t in claims.TIERS) + "; the small tier is a "
              f"{claims.TIERS['small']}.", ""]
    lines += [f"- {w}" for w in VERDICT_WORDS] + [""]
    drawn, shown = {c.stem: c for c in figures.curves(results.values())}, set[str]()
    shuffles = _shuffles(entries)
    falling = _still_falling(shuffles)
    for number, (claim, rule) in claims.RULES.items():
        lines += [f"## Claim {number}", "", f"*The paper:* {claim}", "", f"*Verdict rule:* {rule}", ""]
        mine = claims.families_of(families, number)
        beyond = [f"What only the paper's scale could settle: {claims.PAPER_SCALE_ONLY[number]}", ""]
        if not mine:
            lines += ["No results for this claim yet.", ""] + beyond
            continue
        plain, said = [], set()
        for f in mine:  # a study's caveat once, after its first table's sentence
            caveat = _caveat(f, falling)
            plain.append(_plain(f, "" if caveat in said else caveat))
            said.add(caveat)
        lines += ["In plain words: " + " ".join(escape(p) for p in plain), ""] + beyond
        if number == "3":
            lines += _flattening(shuffles) + [figures.markdown_image(c) for c in figures.loss_charts(shuffles)] + [""]
        for f in mine:
            lines += _familytable(f, "###") + _controls_beside(f, checks, results) + _eps_chart(f, results, drawn,
                                                                                                  shown)
    lines += _masking_section(checks)
    return "\n".join(lines[:-1]) + "\n"


def render_summary(entries: list[Entry], leaderboard_link: str) -> str:
    """The top README's marked section: the claims' named pairs per study and a link to the full tables."""
    lead = NO_RESULTS if not entries else f"{counts(entries)}."
    lead += f" Full tables: [{leaderboard_link}]({leaderboard_link})."
    findings = posixpath.join(posixpath.dirname(leaderboard_link), FINDINGS_NAME)
    return "\n".join([lead, ""] + claims_section(entries, "###", findings)) + "\n"
