"""Leaderboard Markdown generated from the result files under ``leaderboards/``.

Every ``*.json`` under the folder is validated (schema, folder layout, checkpoint present); one bad file
fails the whole run with its name and field, so an entry is never dropped silently. The Markdown is a
pure function of the files (no dates, fixed ordering and number formats), which is what lets CI run
``randmix leaderboard --check`` and fail when someone forgot to regenerate it.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, cast

from randmix_bench.errors import RandmixError, MissingError
from randmix_bench.files import atomic_path
from randmix_bench.mixing import Mixing
from randmix_bench.results import (
    AttackConfig,
    CheckpointRef,
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
    "attack_label",
    "render_leaderboard",
    "render_summary",
    "plan",
    "write",
    "stale",
]

MARKDOWN_NAME = "README.md"
LEADERBOARDS_NAME = "leaderboards"
MARKER_START = "<!-- leaderboard:start -->"
MARKER_END = "<!-- leaderboard:end -->"
THREAT_MODELS = ("Linf", "L2")  # RobustBench's, in its order
SHUFFLE_FOLDER = "shuffle"

NEARLY_PP = 3.0
"""Claim 1 read quantitatively: ``chans`` "nearly" matches ``full`` when its clean accuracy is at most
this many percentage points lower, and ``space`` is "clearly worse" when it is more than this many
points below both."""
SIGNIFICANCE_SE = 2.0
"""Claim 2: a robust-accuracy gain counts when it exceeds this many standard errors of the difference."""
NEAR_PERFECT_SSIM = 0.95
"""Claim 3: a "near-perfect" reconstruction on the MNIST family has mean SSIM at least this."""
MNIST_FAMILY = ("mnist", "fashion-mnist")


class LeaderboardError(RandmixError):
    """Bad result files or a README without markers: one line per problem, each naming its file."""


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
    for field in ("clean_acc", "autoattack_acc"):
        try:
            float(getattr(result, field))
        except ValueError:
            return f"field {field!r}: {getattr(result, field)!r} is not a percentage"
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
    every bad file (with its field) rather than skipping any."""
    root = Path(root)
    if not root.is_dir():
        raise MissingError(f"leaderboards folder {root} does not exist")
    entries: list[Entry] = []
    problems: list[str] = []
    for path in sorted(root.rglob("*.json")):
        try:
            entries.append(load_entry(path, root))
        except ResultError as e:
            problems.append(str(e))
    if problems:
        raise LeaderboardError(f"{len(problems)} bad result file(s):\n" + "\n".join(problems))
    return entries


# ------------------------------------------------------------------------------------------ formatting


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: Iterable[list[str]], right: Iterable[int] = ()) -> list[str]:
    right_aligned = set(right)
    align = ["---:" if i in right_aligned else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _params(trainable: int, frozen: int) -> str:
    return f"{trainable:,} / {frozen:,}"


def _mixing_label(mixing: str, sigma: float) -> str:
    return f"{mixing} (σ={sigma:g})" if mixing == Mixing.CHANS_SMOOTH.value else mixing


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


def _link(entry: Entry, base: Path) -> str:
    return f"[{entry.checkpoint_ref.sha256[:12]}]({_relpath(entry.checkpoint, base)})"


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
    header = ["Rank", "Entry", "Model", "Mixing", "Clean %", "AutoAttack %", "eps", "Params trainable / frozen",
              "n", "Attack", "Checkpoint"]
    out: list[str] = []
    for key in sorted(groups):
        # RobustBench's order: robust accuracy, then clean accuracy, both descending; the file breaks ties.
        group = sorted(groups[key], key=lambda e: (-float(e.robustness.autoattack_acc), -float(e.robustness.clean_acc),
                                                   e.rel))
        rows = []
        for rank, e in enumerate(group, 1):
            r, rb = e.robustness, e.randmix
            rows.append([str(rank), r.name, rb.model, _mixing_label(rb.mixing, rb.smooth_sigma), r.clean_acc,
                         r.autoattack_acc, r.eps, _params(rb.params_trainable, rb.params_frozen),
                         str(rb.n_examples), attack_label(rb.attack), _link(e, base)])
        out += [f"### {key[0]} · {THREAT_MODELS[key[1]]} · eps {group[0].robustness.eps}", ""]
        out += _table(header, rows, right={0, 4, 5, 7, 8}) + [""]
    return out[:-1]


def _shuffle_table(entries: list[Entry], base: Path) -> list[str]:
    shuffles = sorted((e for e in entries if not e.is_robustness),
                      key=lambda e: (e.shuffle.dataset, -e.shuffle.psnr, -e.shuffle.ssim, e.rel))
    if not shuffles:
        return ["No pixel-shuffle results yet."]
    header = ["Dataset", "Entry", "Model", "Mixing", "PSNR dB", "SSIM", "Scrambled input PSNR / SSIM", "n",
              "Epochs", "Params trainable / frozen", "Checkpoint"]
    rows = []
    for e in shuffles:
        r = e.shuffle
        rows.append([r.dataset, r.name, r.model, _mixing_label(r.mixing, r.smooth_sigma), f"{r.psnr:.2f}",
                     f"{r.ssim:.4f}", f"{r.identity_psnr:.2f} / {r.identity_ssim:.4f}", str(r.n_examples),
                     f"{r.epochs:g}", _params(r.params_trainable, r.params_frozen), _link(e, base)])
    return _table(header, rows, right={4, 5, 7, 8})


# ------------------------------------------------------------------------------------------ claims


@dataclass(frozen=True)
class Stat:
    """A variant's number over its training runs: mean, spread, and the standard error of the mean."""

    mean: float
    std: float | None  # across runs, when there are several
    runs: int
    se: float

    def show(self, scale: float = 100.0, digits: int = 2) -> str:
        spread = f" ± {scale * self.std:.{digits}f}" if self.std is not None else ""
        return f"{scale * self.mean:.{digits}f}{spread}"


def _stat(values: list[float], n: int | None = None) -> Stat:
    """Mean over runs. Its standard error is the larger of the runs' std / sqrt(k) and, for an accuracy
    measured on ``n`` points per run, the binomial sqrt(p(1-p)/(k n)): two seeds that happen to agree
    do not make a number exact."""
    mean, k = statistics.fmean(values), len(values)
    binomial = math.sqrt(mean * (1 - mean) / (k * n)) if n else 0.0
    if k > 1:
        std = statistics.stdev(values)
        return Stat(mean, std, k, max(std / math.sqrt(k), binomial))
    return Stat(mean, None, 1, binomial)


def _accuracy_stat(entries: list[Entry], robust: bool) -> Stat:
    """Clean or robust accuracy over training runs: one entry per checkpoint, the one on the most points."""
    runs: dict[str, Entry] = {}
    for e in sorted(entries, key=lambda e: (-e.randmix.n_examples, e.rel)):
        runs.setdefault(e.randmix.checkpoint.sha256, e)
    values = [e.randmix.robust_acc if robust else e.randmix.clean_acc for e in runs.values()]
    return _stat(values, min(e.randmix.n_examples for e in runs.values()))


CLAIMS = [
    ("1", "`chans` (spatial mixing frozen at random init) reaches nearly the clean accuracy of `full`, "
          "and `space` (channel mixing frozen) is clearly worse, on ConvMixer and ResNet.",
     f"supported when `full` − `chans` ≤ {NEARLY_PP:g} percentage points, and `space` is more than "
     f"{NEARLY_PP:g} points below both."),
    ("2", "`chans` models are more robust to adversarial perturbations than `full`, and `chans-smooth` "
          "(low-pass smoothed frozen filters) more still.",
     f"per threat model, eps and attack: supported when the robust-accuracy gain exceeds {SIGNIFICANCE_SE:g} "
     "standard errors of the difference (per variant, the larger of the runs' std/√k and the binomial √(p(1−p)/(kn)) "
     "for k runs on n points), "
     "contradicted when the loss does, otherwise inconclusive."),
    ("3", "Pixel un-shuffling: `chans` networks reconstruct images scrambled by one fixed pixel permutation "
          "near-perfectly on MNIST and Fashion-MNIST, and also work on CIFAR.",
     f"near-perfect = mean SSIM ≥ {NEAR_PERFECT_SSIM:g} (MNIST family); \"works\" elsewhere = SSIM closes at "
     "least half the gap between the scrambled input's SSIM and 1."),
]


def _claim1(clean: dict[str, Stat]) -> list[str]:
    full, chans, space = clean.get("full"), clean.get("chans"), clean.get("space")
    lines = []
    if full and chans:
        gap = 100 * (full.mean - chans.mean)
        verdict = "supported" if gap <= NEARLY_PP else "not supported"
        lines.append(f"- Claim 1 (`chans` ≈ `full`): **{verdict}**: `full` {full.show()} %, `chans` {chans.show()} % "
                     f"({-gap:+.2f} points).")
    else:
        lines.append("- Claim 1 (`chans` ≈ `full`): no data yet (needs `full` and `chans`).")
    if full and chans and space:
        below = 100 * (min(full.mean, chans.mean) - space.mean)
        verdict = "supported" if below > NEARLY_PP else "not supported"
        lines.append(f"- Claim 1 (`space` clearly worse): **{verdict}**: `space` {space.show()} %, "
                     f"{below:.2f} points below the lower of `full` and `chans`.")
    else:
        lines.append("- Claim 1 (`space` clearly worse): no data yet (needs `full`, `chans` and `space`).")
    return lines


def _claim2(label: str, better: str, worse: str, stats: dict[str, Stat]) -> str:
    """Claim 2's verdict for "``better`` is more robust than ``worse``" at one threat setting."""
    a, b = stats.get(better), stats.get(worse)
    if not (a and b):
        return f"- Claim 2 (`{better}` more robust than `{worse}`, {label}): no data yet (needs both)."
    diff = a.mean - b.mean
    margin = SIGNIFICANCE_SE * math.hypot(a.se, b.se)
    verdict = "supported" if diff > margin else "contradicted" if diff < -margin else "inconclusive (within noise)"
    return (f"- Claim 2 (`{better}` more robust than `{worse}`, {label}): **{verdict}**: {a.show()} % vs {b.show()} % "
            f"({100 * diff:+.2f} points, noise margin ±{100 * margin:.2f}).")


def _by_variant(entries: list[Entry], mixing: Callable[[Entry], str]) -> dict[str, list[Entry]]:
    """Entries per mixing variant, in the paper's order (full, chans, space, chans-smooth)."""
    groups: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        groups[mixing(e)].append(e)
    return {m.value: groups[m.value] for m in Mixing if m.value in groups}


def _classification_group(model: str, dataset: str, entries: list[Entry]) -> list[str]:
    variants = _by_variant(entries, lambda e: e.randmix.mixing)
    clean = {v: _accuracy_stat(es, robust=False) for v, es in variants.items()}
    settings = {(e.randmix.threat_model, e.randmix.eps_value, attack_label(e.randmix.attack)):
                f"{e.randmix.threat_model} {e.robustness.eps}, {attack_label(e.randmix.attack)}" for e in entries}
    keys = sorted(settings, key=lambda k: (THREAT_MODELS.index(k[0]), k[1], k[2]))
    robust: dict[tuple[str, float, str], dict[str, Stat]] = {}
    for key in keys:
        robust[key] = {}
        for v, es in variants.items():
            hits = [e for e in es if (e.randmix.threat_model, e.randmix.eps_value, attack_label(e.randmix.attack)) == key]
            if hits:
                robust[key][v] = _accuracy_stat(hits, robust=True)
    header = ["Variant", "Runs", "Clean %"] + [f"Robust % ({settings[k]})" for k in keys]
    rows = [[f"`{v}`", str(clean[v].runs), clean[v].show()]
            + [robust[k][v].show() if v in robust[k] else "—" for k in keys] for v in variants]
    lines = [f"#### {model} · {dataset}", ""] + _table(header, rows, right=set(range(1, len(header)))) + [""]
    lines += _claim1(clean)
    for key in keys:
        lines.append(_claim2(settings[key], "chans", "full", robust[key]))
        lines.append(_claim2(settings[key], "chans-smooth", "chans", robust[key]))
    return lines


def _shuffle_group(model: str, dataset: str, entries: list[Entry]) -> list[str]:
    variants = _by_variant(entries, lambda e: e.shuffle.mixing)
    rows = []
    for v, es in variants.items():
        psnr, ssim, identity = (_stat([getattr(e.shuffle, f) for e in es]) for f in ("psnr", "ssim", "identity_ssim"))
        rows.append([f"`{v}`", str(len(es)), psnr.show(1, 2), ssim.show(1, 4), identity.show(1, 4)])
    lines = [f"#### {model} · {dataset} · pixel un-shuffling", ""]
    lines += _table(["Variant", "Runs", "PSNR dB", "SSIM", "Scrambled input SSIM"], rows, right={1, 2, 3, 4}) + [""]
    if "chans" not in variants:
        return lines + ["- Claim 3: no data yet (needs a `chans` entry)."]
    ssim = statistics.fmean(e.shuffle.ssim for e in variants["chans"])
    identity = statistics.fmean(e.shuffle.identity_ssim for e in variants["chans"])
    target, what = (NEAR_PERFECT_SSIM, "near-perfect") if dataset in MNIST_FAMILY else ((1 + identity) / 2, "works")
    verdict = "supported" if ssim >= target else "not supported"
    return lines + [f"- Claim 3 ({what} on {dataset}): **{verdict}**: `chans` SSIM {ssim:.4f} "
                    f"(threshold {target:.4f}; scrambled input {identity:.4f})."]


def _claims(entries: list[Entry], level: str) -> list[str]:
    lines = [f"{level} full vs chans vs space", "",
             "The paper's claims (arXiv 2503.16760) and whether our entries support them, computed from the result "
             "files: means over training runs (distinct checkpoints), ± their standard deviation when there are "
             "several seeds. Clean accuracy is on each entry's n evaluation points.", ""]
    lines += [f"{number}. {claim} *Verdict rule:* {rule}" for number, claim, rule in CLAIMS] + [""]
    classification: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    shuffle: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for e in entries:
        if e.is_robustness:
            classification[(e.randmix.model, e.randmix.dataset)].append(e)
        else:
            shuffle[(e.shuffle.model, e.shuffle.dataset)].append(e)
    if not classification:
        lines += ["Claims 1 and 2: no data yet (no robustness results).", ""]
    for (model, dataset), group in sorted(classification.items()):
        lines += _classification_group(model, dataset, group) + [""]
    if not shuffle:
        lines += ["Claim 3: no data yet (no pixel-shuffle results).", ""]
    for (model, dataset), group in sorted(shuffle.items()):
        lines += _shuffle_group(model, dataset, group) + [""]
    return lines[:-1]


# ------------------------------------------------------------------------------------------ documents


def _counts(entries: list[Entry]) -> str:
    n_robust = sum(e.is_robustness for e in entries)
    return f"{n_robust} robustness and {len(entries) - n_robust} pixel-shuffle result(s)"


NO_RESULTS = ("**No results yet.** There is no result file under `leaderboards/`: nothing has been measured "
              "with this code yet, so the tables are empty and every claim says \"no data yet\". Entries appear "
              "when an evaluation writes its JSON, with the checkpoint beside it, into "
              "`leaderboards/<dataset>/<Linf|L2|shuffle>/`.")


def render_leaderboard(entries: list[Entry], base: Path) -> str:
    """``leaderboards/README.md``; checkpoint links are relative to ``base`` (the folder it lives in)."""
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
    lines += ["## Adversarial robustness", "",
              "RobustBench's protocol: the first n test points, AutoAttack at the stated eps, models take [0, 1] "
              "inputs. Ranked by AutoAttack accuracy, ties by clean accuracy. Entries attacked with a cheaper "
              "custom attack set say so in the Attack column: their robust accuracy is an upper bound that does not "
              "compare with `AA standard` ones.", ""]
    lines += _robustness_tables(entries, base) + [""]
    lines += ["## Pixel un-shuffling", "",
              "A network learns to undo one fixed random permutation of pixel positions; PSNR/SSIM of its "
              "reconstruction vs the original test image, next to those of the scrambled input itself.", ""]
    lines += _shuffle_table(entries, base) + [""]
    lines += _claims(entries, "##")
    return "\n".join(lines) + "\n"


def render_summary(entries: list[Entry], leaderboard_link: str) -> str:
    """The top README's marked section: the claims' verdicts and a link to the full tables."""
    lead = NO_RESULTS if not entries else f"{_counts(entries)}."
    lead += f" Full tables: [{leaderboard_link}]({leaderboard_link})."
    return "\n".join([lead, ""] + _claims(entries, "###")) + "\n"


def _replace_section(text: str, body: str, readme: Path) -> str:
    start, end = text.find(MARKER_START), text.find(MARKER_END)
    if start < 0 or end < start:
        raise LeaderboardError(f"{readme}: no {MARKER_START} ... {MARKER_END} markers; add them where the "
                               "leaderboard summary should go")
    return text[: start + len(MARKER_START)] + "\n" + body + text[end:]


def plan(root: str | Path, readme: str | Path | None = None) -> dict[Path, str]:
    """The full text every generated file should have: ``<root>/README.md`` and, when ``readme`` exists,
    that file with its marked section replaced."""
    root = Path(root)
    entries = load_entries(root)
    target = root / MARKDOWN_NAME
    out = {target: render_leaderboard(entries, root)}
    if readme is not None and Path(readme).is_file():
        readme = Path(readme)
        summary = render_summary(entries, _relpath(target, readme.parent))
        out[readme] = _replace_section(readme.read_text(), summary, readme)
    return out


def stale(root: str | Path, readme: str | Path | None = None) -> list[Path]:
    """Generated files whose text on disk differs from what ``randmix leaderboard`` would write."""
    return [path for path, text in plan(root, readme).items() if not path.is_file() or path.read_text() != text]


def write(root: str | Path, readme: str | Path | None = None) -> list[Path]:
    """Regenerate the Markdown; returns the files that changed."""
    changed = []
    for path, text in plan(root, readme).items():
        if not path.is_file() or path.read_text() != text:
            with atomic_path(path) as tmp:
                tmp.write_text(text)
            changed.append(path)
    return changed
