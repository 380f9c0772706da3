"""Leaderboard Markdown generated from the result files under ``leaderboards/``.

Every ``*.json`` under the folder is validated (schema, folder layout, checkpoint present); one bad file
fails the whole run with its name and field, so an entry is never dropped silently. The Markdown is a
pure function of the files (no dates, fixed ordering and number formats), which is what lets CI run
``randmix leaderboard --check`` and fail when someone forgot to regenerate it.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import quote

from randmix_bench import claims, figures, masking
from randmix_bench.claims import attack_label, variant_label, why_untrusted
from randmix_bench.errors import MissingError, RandmixError
from randmix_bench.files import atomic_path, check_regular
from randmix_bench.results import (
    CheckpointRef,
    Provenance,
    RandmixBlock,
    Result,
    ResultError,
    RobustnessResult,
    ShuffleResult,
    checkpoint_field,
    read_result,
    resolve_checkpoint,
)

__all__ = [
    "Entry",
    "LeaderboardError",
    "MARKER_START",
    "MARKER_END",
    "load_entry",
    "load_entries",
    "render_leaderboard",
    "render_summary",
    "render_findings",
    "plan",
    "plan_figures",
    "write",
    "stale",
]

MARKDOWN_NAME = "README.md"
LEADERBOARDS_NAME = "leaderboards"
MARKER_START = "<!-- leaderboard:start -->"
MARKER_END = "<!-- leaderboard:end -->"
THREAT_MODELS = ("Linf", "L2")  # RobustBench's, in its order
SHUFFLE_FOLDER = "shuffle"
NOT_RANKED = "Not ranked: unreliable or unchecked"
FIGURES_FOLDER = "figures"  # generated charts only: a PNG there that no chart needs is removed by `write`


class LeaderboardError(RandmixError):
    """Bad result files or a README with damaged markers: one line per problem, each naming its file."""


@dataclass(frozen=True)
class Entry:
    """One validated result file."""

    path: Path  # the JSON file
    rel: str  # its path relative to the leaderboards folder, posix, for messages and links
    result: Result
    checkpoint: Path  # real path, inside the leaderboards folder (see results.resolve_checkpoint)

    @property
    def checkpoint_ref(self) -> CheckpointRef:
        return checkpoint_field(self.result)[0]

    @property
    def run_key(self) -> str:
        """What identifies the run behind the entry: its checkpoint's weights digest (the file's sha256 on results
        written before it was recorded). Re-evaluations and copies of one checkpoint are one run, whatever their
        file names say; :func:`load_entries` refuses copies that label it differently."""
        ref = self.checkpoint_ref
        return ref.weights_sha256 or ref.sha256

    @property
    def labels(self) -> dict[str, object]:
        """What the entry says about its run: two entries of one checkpoint must say the same."""
        r = self.randmix if self.is_robustness else self.shuffle
        epochs = self.randmix.train_epochs if self.is_robustness else self.shuffle.epochs
        recipe = self.randmix.train_recipe if self.is_robustness else None
        return {"model": r.model, "mixing": str(r.mixing), "mixer_seed": r.mixer_seed, "smooth_sigma": r.smooth_sigma,
                "train_seed": r.train_seed, "train_recipe": recipe, "train_epochs": epochs}

    @property
    def is_robustness(self) -> bool:
        return isinstance(self.result, RobustnessResult)

    @property
    def robustness(self) -> RobustnessResult:
        return cast(RobustnessResult, self.result)

    @property
    def randmix(self) -> RandmixBlock:
        return self.robustness.randmix

    @property
    def shuffle(self) -> ShuffleResult:
        return cast(ShuffleResult, self.result)


def _layout_problem(rel_parts: tuple[str, ...], result: Result) -> str | None:
    """Why a file is in the wrong place for its content, or None: the folder decides the table it is
    listed under, so a mismatch would list it under the wrong dataset or threat model."""
    expected = "<dataset>/<Linf|L2|shuffle>/<name>.json"
    if len(rel_parts) != 3:
        return f"field '<path>': expected the layout {expected}"
    dataset, group, _ = rel_parts
    if isinstance(result, ShuffleResult):
        if group != SHUFFLE_FOLDER:
            return f"field 'track': a shuffle result must be under <dataset>/{SHUFFLE_FOLDER}/, not {group}/"
        if result.dataset != dataset:
            return f"field 'dataset': {result.dataset!r} does not match its folder {dataset!r}"
        return None
    if result.randmix.threat_model != group:
        return (f"field 'randmix.threat_model': {result.randmix.threat_model!r} does not match its folder "
                f"{group!r} ({expected})")
    if result.randmix.dataset != dataset:
        return f"field 'randmix.dataset': {result.randmix.dataset!r} does not match its folder {dataset!r}"
    return None


def load_entry(path: str | Path, root: str | Path | None = None) -> Entry:
    """One result file, validated, with its checkpoint inside ``root``; given the leaderboards ``root``,
    also its place in the ``<dataset>/<Linf|L2|shuffle>/`` layout. Without ``root``, the nearest folder
    above the file named ``leaderboards`` is the root, else the file's own folder. Raises ``ResultError``
    naming file and field."""
    path = Path(path)
    result = read_result(path)
    if root is not None:
        rel = path.relative_to(root)
        problem = _layout_problem(rel.parts, result)
        if problem:
            raise ResultError(f"{path}: {problem}")
    else:
        rel = path
        root = next((p for p in path.resolve().parents if p.name == LEADERBOARDS_NAME), path.parent)
    return Entry(path, rel.as_posix(), result, resolve_checkpoint(result, path, root))


def load_entries(root: str | Path) -> list[Entry]:
    """Every result under ``root``, validated, in path order; raises :class:`LeaderboardError` listing
    every bad file (with its field) rather than skipping any: one line for one bad file."""
    root = Path(root)
    if not root.is_dir():
        raise MissingError(f"leaderboards folder {root} does not exist; pass --dir with the folder of result files")
    entries: list[Entry] = []
    problems: list[str] = []
    for path in sorted(root.rglob("*.json")):
        try:
            entries.append(load_entry(path, root))
        except ResultError as e:
            problems.append(str(e))
    problems += _relabelled_runs(entries)
    if len(problems) == 1:
        raise LeaderboardError(problems[0])
    if problems:
        raise LeaderboardError(f"{len(problems)} bad result file(s):\n" + "\n".join(problems))
    return entries


def _relabelled_runs(entries: list[Entry]) -> list[str]:
    """One problem per entry that claims a checkpoint another entry claims (by weights digest or file sha256)
    with other labels (training seed, mixing, sigma, recipe...): a copied result relabelled as another run."""
    first: dict[tuple[str, str], Entry] = {}
    problems = []
    for e in entries:
        ref = e.checkpoint_ref
        for key in (("weights", ref.weights_sha256), ("file", ref.sha256)):
            if key[1] is None:
                continue
            earlier = first.setdefault((key[0], key[1]), e)
            differ = sorted(k for k, v in e.labels.items() if earlier.labels[k] != v)
            if differ:
                problems.append(f"{e.path}: claims the checkpoint of {earlier.rel} ({key[0]} sha256 {key[1][:12]}…) "
                                f"but labels it with another {', '.join(differ)}; one checkpoint is one run: remove "
                                "the relabelled copy")
                break
    return problems


# ------------------------------------------------------------------------------------------ formatting

_MARKDOWN = re.compile(r"([\\`*_\[\]#!|~])")
_AUTOLINK = re.compile(r"(?i)(://|www\.|@)")


class Markdown(str):
    """Text this module generated as Markdown (a link, a code span): the one kind of cell not escaped."""


def _escape(text: object) -> str:
    """Free text from a result file as inert Markdown and HTML: no emphasis, links, images, tables, HTML
    tags or comments (so never the README's markers), nor GFM's bare-URL and e-mail autolinks."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKDOWN.sub(r"\\\1", text)
    return _AUTOLINK.sub(lambda m: m.group(1).replace(":", "&#58;").replace(".", "&#46;").replace("@", "&#64;"), text)


def _code(text: str) -> Markdown:
    """A variant or mixing name as a code span; only our own identifiers (no backticks) come here."""
    return Markdown(f"`{text}`")


def _heading(level: str, *parts: object) -> str:
    return f"{level} " + " · ".join(_escape(p) for p in parts)


def _table(header: list[str], rows: Iterable[list[str]], right: Iterable[int] = ()) -> list[str]:
    right_aligned = set(right)
    align = ["---:" if i in right_aligned else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(c if isinstance(c, Markdown) else _escape(c) for c in row) + " |" for row in rows]
    return lines


def _params(trainable: int, frozen: int) -> str:
    return f"{trainable:,} / {frozen:,}"


def _link(entry: Entry, base: Path) -> Markdown:
    """The checkpoint as a link whose target is percent-encoded: a path from a file cannot break out."""
    target = quote(_relpath(entry.checkpoint, base), safe="/")
    return Markdown(f"[{_escape(entry.checkpoint_ref.sha256[:12])}]({target})")


def _relpath(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


# ------------------------------------------------------------------------------------------ tables


def _robustness_tables(entries: list[Entry], base: Path) -> list[str]:
    groups: dict[tuple[str, int, float], list[Entry]] = defaultdict(list)
    for e in entries:
        if e.is_robustness:
            groups[(e.randmix.dataset, THREAT_MODELS.index(e.randmix.threat_model), e.randmix.eps_value)].append(e)
    if not groups:
        return ["No robustness results yet."]
    columns = ["Entry", "Model", "Mixing", "Clean %", "AutoAttack %", "eps", "Params trainable / frozen", "n",
               "Attack", "Checkpoint"]

    def cells(e: Entry) -> list[str]:
        r, rb = e.robustness, e.randmix
        return [r.name, rb.model, variant_label(rb.mixing, rb.smooth_sigma), r.clean_acc, r.autoattack_acc, r.eps,
                _params(rb.params_trainable, rb.params_frozen), str(rb.n_examples), attack_label(rb.attack),
                _link(e, base)]

    out: list[str] = []
    for key in sorted(groups):
        # RobustBench's order: robust accuracy, then clean accuracy, both descending; the file breaks ties.
        group = sorted(groups[key], key=lambda e: (-float(e.robustness.autoattack_acc), -float(e.robustness.clean_acc),
                                                   e.rel))
        ranked = [e for e in group if why_untrusted(e.robustness) is None]
        out += [_heading("###", key[0], THREAT_MODELS[key[1]], f"eps {group[0].robustness.eps}"), ""]
        if ranked:
            rows = [[str(rank)] + cells(e) for rank, e in enumerate(ranked, 1)]
            out += _table(["Rank"] + columns, rows, right={0, 4, 5, 7, 8}) + [""]
        else:
            out += ["No ranked entries: none has a passed sanity report without flags.", ""]
        unranked = [e for e in group if why_untrusted(e.robustness) is not None]
        if unranked:
            rows = [cells(e) + [why_untrusted(e.robustness) or ""] for e in unranked]
            out += [f"**{NOT_RANKED}** (their numbers may come from masked gradients or an unchecked run; they "
                    "feed no claim verdict):", ""]
            out += _table(columns + ["Why not ranked"], rows, right={3, 4, 6, 7}) + [""]
    return out[:-1]


def _shuffle_table(entries: list[Entry], base: Path) -> list[str]:
    shuffles = sorted((e for e in entries if not e.is_robustness),
                      key=lambda e: (e.shuffle.dataset, -e.shuffle.psnr, -e.shuffle.ssim, e.rel))
    if not shuffles:
        return ["No pixel-shuffle results yet."]
    header = ["Dataset", "Entry", "Model", "Mixing", "PSNR dB", "SSIM", "Scrambled input PSNR / SSIM",
              "Mean image PSNR / SSIM", "n", "Epochs", "Params trainable / frozen", "Checkpoint"]
    rows = []
    for e in shuffles:
        r = e.shuffle
        mean_image = ("—" if r.mean_image_psnr is None or r.mean_image_ssim is None
                      else f"{r.mean_image_psnr:.2f} / {r.mean_image_ssim:.4f}")
        rows.append([r.dataset, r.name, r.model, variant_label(r.mixing, r.smooth_sigma), f"{r.psnr:.2f}",
                     f"{r.ssim:.4f}", f"{r.identity_psnr:.2f} / {r.identity_ssim:.4f}", mean_image, str(r.n_examples),
                     f"{r.epochs:g}", _params(r.params_trainable, r.params_frozen), _link(e, base)])
    return _table(header, rows, right={4, 5, 8, 9})


# ------------------------------------------------------------------------------------------ claims


def _number(value: float, unit: str, sign: bool = True) -> str:
    digits = 4 if unit == "" else 2
    return "—" if math.isnan(value) else f"{value:{'+' if sign else ''}.{digits}f}"


def _p(p: float) -> str:
    return "—" if math.isnan(p) else "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _tier(tier: str) -> str:
    return f"{tier} tier ({claims.TIERS[tier]})" if tier != "other" else claims.TIERS[tier]


def _pair(row: claims.Comparison) -> Markdown:
    """``first > second`` when the paper expects first higher, else ``first − second``."""
    return Markdown(f"{_code(row.first)} {'>' if row.expected else '−'} {_code(row.second)}")


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


def _family_table(f: claims.Family, level: str) -> list[str]:
    lines = [_heading(level, *_family_title(f)), ""]
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
        lines += _table(["Pair", f"Means ± std (runs){unit}", f"Difference{unit}", "95 % interval", "p (Holm)",
                         "Detectable", "Verdict"], rows, right={2, 4, 5}) + [""]
    else:
        lines += ["Only one variant: no pair to compare.", ""]
    detectable = _detectable(f)
    lines += [detectable, ""] if detectable else []
    lines += [f"- {c.statement}: **{c.label}**: {_escape(c.detail)}." for c in f.checks]
    return lines + [""] if f.checks else lines


def _plain(f: claims.Family) -> str:
    """One sentence per table, in plain words, from its numbers."""
    unit = f" {f.unit}" if f.unit else ""
    said = []
    for r in f.rows:
        if r.verdict is claims.Verdict.INSUFFICIENT_RUNS or not (r.expected or r.verdict is claims.Verdict.DIFFERS):
            continue
        size = f"{_number(r.effect, f.unit)}{unit} [{_number(r.low, f.unit)}, {_number(r.high, f.unit)}]"
        what = f"{r.first} {'above' if r.expected else 'vs'} {r.second}"
        said.append(f"{what}: {r.verdict.value} ({size})")
    said += [f"{c.statement.replace('`', '')}: {c.label}" for c in f.checks]
    where = f"{f.scale.model} on {f.scale.dataset}" + (f", {f.scale.setting}" if f.scale.setting else "")
    tail = "; ".join(said) if said else "no significant difference after Holm"
    smoke = " (smoke test only)" if f.scale.tier in ("small", "smoke") else ""
    return f"{where}{smoke}, {f.measure}: {tail}."


def _summary_line(f: claims.Family) -> str:
    named = [f"{_pair(r)} **{r.verdict.value}** ({_number(r.effect, f.unit)})" for r in f.rows if r.expected]
    named += [f"{c.statement} **{c.label}**" for c in f.checks]
    return (f"- Claim {f.claim}, {_escape(_tier(f.scale.tier))}, {_escape(f.scale.label())}: "
            + ("; ".join(named) if named else "no pair the paper names") + ".")


def _claims(entries: list[Entry], level: str) -> list[str]:
    lines = [f"{level} full vs chans vs space", "",
             f"The paper's claims (arXiv 2503.16760) against our entries, one line per study and measure: the pairs "
             f"the paper names, their verdict and difference. Every pair, interval, p-value and the method: "
             f"[{FINDINGS_NAME}]({FINDINGS_NAME}). Only ranked robustness entries count.", ""]
    families = claims.evaluate(e.result for e in entries)
    lines += [_summary_line(f) for f in families if f.checks or any(r.expected for r in f.rows)]
    if not any(f.claim != "3" for f in families):
        lines += ["", "Claims 1 and 2: no data yet (no ranked robustness results)."]
    if not any(f.claim == "3" for f in families):
        lines += ["", "Claim 3: no data yet (no pixel-shuffle results)."]
    return lines


# ------------------------------------------------------------------------------------------ documents


def _counts(entries: list[Entry]) -> str:
    n_robust = sum(e.is_robustness for e in entries)
    return f"{n_robust} robustness and {len(entries) - n_robust} pixel-shuffle result(s)"


NO_RESULTS = ("**No results yet.** There is no result file under `leaderboards/`: nothing has been measured "
              "with this code yet, so the tables are empty and every claim says \"no data yet\". Entries appear "
              "when an evaluation writes its JSON, with the checkpoint beside it, into "
              "`leaderboards/<dataset>/<Linf|L2|shuffle>/`.")


def render_leaderboard(entries: list[Entry], base: Path, grids: Sequence[Path] = ()) -> str:
    """``leaderboards/README.md``; links are relative to ``base`` (the folder it lives in); ``grids`` are the
    pixel-shuffle pictures to show."""
    lines = [
        "# randmix-bench leaderboards",
        "",
        "<!-- Generated by `randmix leaderboard` from the JSON files in this folder; do not edit by hand. -->",
        "",
        f"{_counts(entries)}. Each entry is a JSON file beside the small checkpoint that produced it; "
        "`randmix verify` re-checks each checkpoint's sha256 and recomputes its clean accuracy (or reconstruction "
        "PSNR) on a few hundred test points on a CPU.",
        "",
    ]
    if not entries:
        lines += [NO_RESULTS, ""]
    lines += [f"What the results say about the paper's claims, in plain words: [{FINDINGS_NAME}]({FINDINGS_NAME}).", ""]
    lines += ["## Adversarial robustness", "",
              "RobustBench's protocol: the first n test points, AutoAttack at the stated eps, models take [0, 1] "
              "inputs. Ranked by AutoAttack accuracy, ties by clean accuracy. Only entries whose gradient-masking "
              "sanity checks (`randmix eval --sanity`) passed, with no AutoAttack flag and not marked unreliable, are "
              f"ranked; the others are listed under each table as *{NOT_RANKED}*, with the reason. Entries "
              "attacked with a cheaper custom attack set say so in the Attack column: their robust accuracy is an "
              "upper bound that does not compare with `AA standard` ones.", ""]
    lines += _robustness_tables(entries, base) + [""]
    charts = figures.curves(e.robustness for e in entries if e.is_robustness)
    if charts:
        lines += ["### Robust accuracy against eps", "",
                  "Ranked entries only; eps 0 is the clean accuracy. Each point is the mean over the training seeds "
                  "that measured it (the headline eps: every seed; the sweep's other values: the seeds that swept "
                  "them), with bars for their standard deviation.", ""]
        lines += [f"![{_escape(c.title)}]({FIGURES_FOLDER}/{c.stem}.png)" for c in charts] + [""]
    lines += ["## Pixel un-shuffling", "",
              "A network learns to undo one fixed random permutation of pixel positions; PSNR/SSIM of its "
              "reconstruction vs the original test image, next to those of the scrambled input itself.", ""]
    lines += _shuffle_table(entries, base) + [""]
    if grids:
        lines += ["Ground truth, scrambled input, then one reconstruction row per variant "
                  "(`randmix shuffle eval`'s grids):", ""]
        lines += [f"![{_escape(g.stem)}]({quote(_relpath(g, base))})" for g in grids] + [""]
    lines += _claims(entries, "##")
    return "\n".join(lines) + "\n"


FINDINGS_NAME = "FINDINGS.md"
VERDICT_WORDS = [
    "`supported`: significant in the paper's direction after Holm; `opposite`: significant the other way; "
    "`differs`: significant on a pair the paper says nothing about (the sign of the difference says which is "
    "higher); `not shown`: none of these (the table's detectable difference says what it cannot rule out); "
    "`insufficient runs`: fewer than the runs a test needs.",
    "Equivalence (claim 1a): `equivalent within ±m`: the 90 % interval lies inside ±m; `not equivalent`: the "
    "difference is significantly beyond the margin; `undecided`: neither.",
]


def _where(entries: list[Entry]) -> list[str]:
    """Where the numbers behind the findings were measured, from the results' own provenance."""
    def values(get: Callable[[Entry], object]) -> str:
        return ", ".join(sorted({_escape(get(e)) for e in entries})) or "—"

    def provenance(e: Entry) -> Provenance:
        return e.randmix.provenance if e.is_robustness else e.shuffle.provenance

    return [f"- Devices: {values(lambda e: provenance(e).device)}; "
            f"torch {values(lambda e: provenance(e).versions.get('torch'))}; "
            f"commands: {values(lambda e: provenance(e).command)}.",
            f"- Datasets: {values(lambda e: e.randmix.dataset if e.is_robustness else e.shuffle.dataset)}; test points "
            f"per entry: {values(lambda e: e.randmix.n_examples if e.is_robustness else e.shuffle.n_examples)}.",
            f"- Measured {values(lambda e: provenance(e).date[:10])}, at commits "
            f"{values(lambda e: provenance(e).git_revision[:10] or 'unknown')}."]


def _masking_section(checks: list[masking.ControlCheck]) -> list[str]:
    """The gradient-masking controls beside the verdicts: each white-box entry against its transfer and Square
    controls on their common points; a flagged entry feeds no verdict."""
    lines = ["## Gradient-masking controls", "",
             "Each white-box entry against the attacks that never use its gradient, on the points both attacked: "
             "APGD-CE examples made on the seed-matched `full` model (transfer) and Square alone (black-box). A model "
             "that masks its gradients keeps points robust that these weaker attacks break; an entry is **flagged** "
             "(and left out of every verdict above) when a control leaves fewer points robust than its white-box "
             "attacks. *Missed* counts the single points a control broke that the white-box attacks did not.", ""]
    if not checks:
        return lines + ["No control has been run on these results yet (the medium tier runs them).", ""]
    rows = [[_code(c.entry), c.kind, f"{c.n:,}", f"{100 * c.whitebox_robust / c.n:.1f}",
             f"{100 * c.control_robust / c.n:.1f}", str(c.missed), Markdown("**flagged**") if c.flagged else "ok"]
            for c in sorted(checks, key=lambda c: (c.entry, c.kind))]
    return lines + _table(["Entry", "Control", "Points", "White-box robust %", "Control robust %", "Missed", ""],
                          rows, right=(2, 3, 4, 5)) + [""]


def render_findings(entries: list[Entry]) -> str:
    """``leaderboards/FINDINGS.md``: per claim, one table per study of all pairs, and the same in plain words; the
    gradient-masking controls last (a flagged entry feeds no verdict)."""
    checks = masking.controls([e.robustness for e in entries if e.is_robustness])
    flagged = {c.entry for c in checks if c.flagged}
    families = claims.evaluate(e.result for e in entries if not (e.is_robustness and e.result.name in flagged))
    lines = ["# Findings: the paper's claims against these results", "",
             "<!-- Generated by `randmix leaderboard` from the JSON files in this folder; do not edit by hand. -->", "",
             f"From {_counts(entries)} (ranked robustness entries only; see [README.md](README.md) for the tables "
             "and figures).", ""]
    lines += _where(entries) + [""] if entries else [NO_RESULTS, ""]
    lines += ["How to read it: each table compares every pair of variants of one study (same tier, model, dataset, "
              "recipe and epochs; for robust accuracy also threat model, eps and attack), the first minus the second "
              "(first = the variant the paper expects to be higher, when it says). Tiers lead in the order "
              + ", ".join(t for t in claims.TIERS) + "; the small tier is a "
              f"{claims.TIERS['small']}.", ""]
    lines += [f"- {w}" for w in VERDICT_WORDS] + [""]
    for number, (claim, rule) in claims.RULES.items():
        lines += [f"## Claim {number}", "", f"*The paper:* {claim}", "", f"*Verdict rule:* {rule}", ""]
        mine = claims.families_of(families, number)
        if not mine:
            lines += ["No results for this claim yet.", ""]
            continue
        lines += ["In plain words: " + " ".join(_escape(_plain(f)) for f in mine), ""]
        for f in mine:
            lines += _family_table(f, "###")
    lines += _masking_section(checks)
    return "\n".join(lines[:-1]) + "\n"


def render_summary(entries: list[Entry], leaderboard_link: str) -> str:
    """The top README's marked section: the claims' named pairs per study and a link to the full tables."""
    lead = NO_RESULTS if not entries else f"{_counts(entries)}."
    lead += f" Full tables: [{leaderboard_link}]({leaderboard_link})."
    return "\n".join([lead, ""] + _claims(entries, "###")) + "\n"


def _replace_section(text: str, body: str, readme: Path) -> str:
    """The README with its marked section replaced; damaged markers are an error, never guessed around
    (a missing end would otherwise swallow the rest of the README, a duplicate grow it on every run)."""
    starts, ends = text.count(MARKER_START), text.count(MARKER_END)
    if starts == 0 and ends == 0:
        raise LeaderboardError(f"{readme}: no {MARKER_START} ... {MARKER_END} markers; add them where the "
                               "leaderboard summary should go")
    start, end = text.find(MARKER_START), text.find(MARKER_END)
    if starts != 1 or ends != 1 or end < start:
        raise LeaderboardError(f"{readme}: damaged leaderboard markers ({starts} {MARKER_START}, {ends} {MARKER_END}"
                               f"{', end before start' if starts == ends == 1 else ''}); leave exactly one of each, "
                               "start first")
    return text[: start + len(MARKER_START)] + "\n" + body + text[end:]


def _grids(root: Path) -> list[Path]:
    return sorted(root.glob(f"*/{SHUFFLE_FOLDER}/*.png"))


def plan(root: str | Path, readme: str | Path | None = None) -> dict[Path, str]:
    """The full text every generated file should have: ``<root>/README.md``, ``<root>/FINDINGS.md`` and, when
    ``readme`` exists, that file with its marked section replaced."""
    root = Path(root)
    entries = load_entries(root)
    target = root / MARKDOWN_NAME
    out = {target: render_leaderboard(entries, root, _grids(root)), root / FINDINGS_NAME: render_findings(entries)}
    if readme is not None and Path(readme).is_file():
        readme = Path(readme)
        summary = render_summary(entries, _relpath(target, readme.parent))
        out[readme] = _replace_section(readme.read_text(), summary, readme)
    return out


def plan_figures(root: str | Path) -> dict[Path, figures.Curve]:
    """The charts ``randmix leaderboard`` draws, by their path under ``<root>/figures/``."""
    root = Path(root)
    charts = figures.curves(e.robustness for e in load_entries(root) if e.is_robustness)
    return {root / FIGURES_FOLDER / f"{c.stem}.png": c for c in charts}


def _stray_figures(root: Path, wanted: dict[Path, figures.Curve]) -> list[Path]:
    """Charts this command drew (they carry a fingerprint) that no result needs any more; other PNGs are the user's."""
    folder = root / FIGURES_FOLDER
    if folder.is_symlink():
        return []
    return sorted(p for p in folder.glob("*.png")
                  if p not in wanted and not p.is_symlink() and figures.read_fingerprint(p) is not None)


def stale(root: str | Path, readme: str | Path | None = None) -> list[Path]:
    """Generated files that differ from what ``randmix leaderboard`` would write: Markdown by text, charts
    by the data fingerprint they carry, and charts no result needs any more."""
    root = Path(root)
    wanted = plan_figures(root)
    return ([path for path, text in plan(root, readme).items() if not path.is_file() or path.read_text() != text]
            + [path for path, c in wanted.items() if figures.read_fingerprint(path) != figures.fingerprint(c)]
            + _stray_figures(root, wanted))


GENERATED_MARK = "<!-- Generated by `randmix leaderboard`"
"""The first line of every Markdown file ``write`` owns (a chart carries its fingerprint instead)."""


def _check_ours(root: Path, texts: dict[Path, str], wanted: dict[Path, figures.Curve]) -> None:
    """Refuse, before anything is written, to replace or remove what ``randmix leaderboard`` did not generate: a
    README.md or FINDINGS.md without its mark, a chart path holding the user's own PNG, anything reached through
    a symlink (a figures folder linked elsewhere would have files deleted outside the leaderboards folder)."""
    folder = root / FIGURES_FOLDER
    if folder.is_symlink():
        raise LeaderboardError(f"{folder} is a symlink (to {os.readlink(folder)}); randmix leaderboard writes its "
                               "charts only into a real folder: replace the link with a folder")
    owned = [p for p in texts if p.parent == root]  # the README given by --readme has markers instead
    for path in [*owned, *wanted]:
        if path.is_symlink():
            raise LeaderboardError(f"{path} is a symlink; randmix leaderboard replaces only files it generated: "
                                   "remove the link")
    for path in owned:
        if path.exists() and GENERATED_MARK not in _head(path):
            raise LeaderboardError(f"{path} was not generated by randmix leaderboard (no '{GENERATED_MARK}' line); "
                                   f"move it away or pass --dir a folder of result files only")
    for path in wanted:
        if path.exists() and figures.read_fingerprint(path) is None:
            raise LeaderboardError(f"{path} is not a chart randmix leaderboard drew; move it away (the chart goes "
                                   "there)")


def _head(path: Path) -> str:
    """The first 4 KB of a file, where the generated mark is; a FIFO or device there is refused, never read (a FIFO
    would block, a device never end)."""
    check_regular(path, "leaderboard file")
    with open(path, "rb") as f:
        return f.read(4096).decode(errors="replace")


def write(root: str | Path, readme: str | Path | None = None) -> list[Path]:
    """Regenerate the Markdown and the charts; returns the files that changed (or were removed). Only files this
    command generated are replaced or removed (:func:`_check_ours`); a PNG of the user's is never touched."""
    root = Path(root)
    changed = []
    texts = plan(root, readme)
    _check_ours(root, texts, plan_figures(root))
    for path, text in texts.items():
        if not path.is_file() or path.read_text() != text:
            with atomic_path(path) as tmp:
                tmp.write_text(text)
            changed.append(path)
    wanted = plan_figures(root)
    for path, curve in wanted.items():
        if figures.read_fingerprint(path) != figures.fingerprint(curve):
            path.parent.mkdir(parents=True, exist_ok=True)
            figures.draw(curve, path)
            changed.append(path)
    for path in _stray_figures(root, wanted):
        path.unlink()
        changed.append(path)
    return changed
