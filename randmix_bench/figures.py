"""The leaderboard's charts, drawn from its result files: robustness curves (robust accuracy against eps, one
chart per model, dataset, threat model and attack, one line per variant: mean over training seeds, a band for
their spread) and training-loss curves (one chart per pixel-shuffle study, one line per run, a colour per variant).

A chart is a pure function of its data (:class:`Curve`, :class:`LossChart`). The PNG carries the sha256 of that
data in a text chunk, so ``randmix leaderboard --check`` can tell a stale or hand-edited picture from a current
one without re-drawing it (PNG bytes differ between matplotlib versions; the data does not).
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import textwrap
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from randmix_bench.claims import attack_label, variant_label, why_untrusted
from randmix_bench.files import atomic_path, png_text
from randmix_bench.markdown import escape
from randmix_bench.results import RobustnessResult, ShuffleResult
from randmix_bench.verdicts import shuffle_study

__all__ = ["FIGURES_FOLDER", "Point", "Series", "Curve", "LossRun", "LossChart", "Chart", "curves", "curve_stem",
           "loss_charts", "markdown_image", "fingerprint", "read_fingerprint", "draw"]

FIGURES_FOLDER = "figures"  # generated charts only: a PNG there that no chart needs is removed by `randmix leaderboard`
FINGERPRINT_KEY = "randmix:data-sha256"
FORMAT = "randmix-curve/3"  # bump when the drawing changes, so that --check asks for a redraw
LOSS_FORMAT = "randmix-loss/2"  # the same for the loss charts
TITLE_WIDTH = 76  # characters on a title line: a longer title wraps instead of running off the figure


@dataclass(frozen=True)
class Point:
    eps: str  # as the results write it, e.g. "2/255"; "0" for the clean accuracy
    eps_value: float
    mean: float  # percent
    spread: float | None  # sample standard deviation over runs, None for one run
    runs: int
    attacks: str | None = None  # a sweep's cheaper attacks at this eps (e.g. "apgd-ce"), when not the chart's own


@dataclass(frozen=True)
class Series:
    variant: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Curve:
    """One chart: the file stem, its title and a line per variant."""

    stem: str
    title: str
    series: tuple[Series, ...]


def _point(eps: str, eps_value: float, values: list[float], attacks: set[str]) -> Point:
    spread = statistics.stdev(values) if len(values) > 1 else None
    return Point(eps, eps_value, statistics.fmean(values), spread, len(values), " / ".join(sorted(attacks)) or None)


def _stem(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts)).strip("-").lower()


def _chart_key(r: RobustnessResult) -> tuple[str, str, str, str]:
    rb = r.randmix
    return rb.model, rb.dataset, rb.threat_model, attack_label(rb.attack)


def curve_stem(r: RobustnessResult) -> str:
    """The file stem of the robustness chart ``r`` is drawn in (when it is drawn: see :func:`curves`)."""
    model, dataset, norm, attack = _chart_key(r)
    return _stem(dataset, model, norm, attack)


def curves(results: Iterable[RobustnessResult]) -> list[Curve]:
    """The charts for these results: only ranked ones count (see :func:`claims.why_untrusted`); a chart needs
    at least one variant with more than the clean point. Each eps averages every run that measured it: the
    headline eps over all seeds, the sweep's other values over the runs that swept them; a sweep that used
    cheaper attacks than the chart's says which at that eps (an upper bound on what the chart's attacks leave)."""
    charts: dict[tuple[str, str, str, str], dict[str, dict[tuple[float, str], list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    cheaper: dict[tuple[str, str, str, str], dict[float, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in results:
        if why_untrusted(r) is not None:
            continue
        rb, key = r.randmix, _chart_key(r)
        by_eps = charts[key][variant_label(rb.mixing, rb.smooth_sigma)]
        by_eps[(0.0, "0")].append(float(r.clean_acc))
        measured = {(p.eps_value, p.eps): 100 * p.robust_acc for p in rb.sweep}
        for p in rb.sweep:
            if p.attacks is not None and p.eps_value != rb.eps_value:
                cheaper[key][p.eps_value].add(", ".join(a.value for a in p.attacks))
        measured.setdefault((rb.eps_value, r.eps), float(r.autoattack_acc))
        for point, value in measured.items():
            by_eps[point].append(value)
    out = []
    for (model, dataset, norm, attack), variants in sorted(charts.items()):
        notes = cheaper[(model, dataset, norm, attack)]
        series = tuple(
            Series(variant, tuple(_point(text, value, runs, notes.get(value, set()))
                                  for (value, text), runs in sorted(by_eps.items())))
            for variant, by_eps in sorted(variants.items()))
        if any(len(s.points) > 1 for s in series):
            out.append(Curve(_stem(dataset, model, norm, attack), f"{model} on {dataset}: {norm}, {attack}", series))
    return out


def markdown_image(chart: Chart, folder: str = FIGURES_FOLDER) -> str:
    """The Markdown that shows ``chart`` from a page beside ``folder``."""
    return f"![{escape(chart.title)}]({folder}/{chart.stem}.png)"


@dataclass(frozen=True)
class LossRun:
    name: str
    variant: str
    trace: tuple[tuple[float, float], ...]  # (epoch fraction, mean training loss), randmix_bench.loss_curve


@dataclass(frozen=True)
class LossChart:
    """One pixel-shuffle study's training-loss curves: the file stem, its title and a line per run."""

    stem: str
    title: str
    runs: tuple[LossRun, ...]


Chart = Curve | LossChart


def loss_charts(results: Iterable[ShuffleResult]) -> list[LossChart]:
    """One chart per pixel-shuffle study (:func:`randmix_bench.verdicts.shuffle_study`) whose results carry a loss
    trace; runs without one are left out."""
    studies: dict[tuple[str, str, str, str], list[LossRun]] = defaultdict(list)
    for r in results:
        if r.train_loss is not None:
            studies[shuffle_study(r)].append(LossRun(r.name, variant_label(r.mixing, r.smooth_sigma),
                                                     tuple((x, y) for x, y in r.train_loss)))
    return [LossChart(_stem("loss", tier, dataset, model, training),
                      f"training loss: {model} on {dataset}, {training} ({tier} tier)",
                      tuple(sorted(runs, key=lambda run: (run.variant, run.name))))
            for (tier, model, dataset, training), runs in sorted(studies.items())]


def fingerprint(chart: Chart) -> str:
    """sha256 of the chart's data and format: what the PNG must carry to be current."""
    kind = FORMAT if isinstance(chart, Curve) else LOSS_FORMAT
    payload = json.dumps({"format": kind, **asdict(chart)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def read_fingerprint(path: Path) -> str | None:
    """The fingerprint a PNG carries, or None (no file, not a PNG, no such chunk)."""
    return png_text(path, FINGERPRINT_KEY)


def draw(chart: Chart, path: Path) -> None:
    """Write the chart as a PNG carrying its fingerprint (atomically: a reader never sees half a file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    if isinstance(chart, Curve):
        _plot_curve(chart, ax)
    else:
        _plot_loss(chart, ax)
    ax.grid(alpha=0.3)
    ax.set_title(textwrap.fill(chart.title, TITLE_WIDTH), fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={FINGERPRINT_KEY: fingerprint(chart), "Software": None})
    plt.close(fig)


def _plot_curve(curve: Curve, ax: Any) -> None:
    for s in curve.series:
        xs = [p.eps_value for p in s.points]
        ys = [p.mean for p in s.points]
        errors = [p.spread or 0.0 for p in s.points]
        runs = max(p.runs for p in s.points)
        (line,) = ax.plot(xs, ys, marker="o", markersize=4, label=f"{s.variant} ({runs} run{'s' * (runs > 1)})")
        ax.fill_between(xs, [y - e for y, e in zip(ys, errors, strict=True)],
                        [y + e for y, e in zip(ys, errors, strict=True)], color=line.get_color(), alpha=0.2, lw=0)
    ticks = {p.eps_value: p.eps + (f"\n({p.attacks} only)" if p.attacks else "") for s in curve.series
             for p in s.points}
    ax.set_xticks(list(ticks), list(ticks.values()), rotation=45 if len(ticks) > 6 else 0, fontsize=8)
    ax.set_xlabel("eps (0: clean accuracy)")
    ax.set_ylabel("accuracy % (mean, band ± sd over training seeds)")
    ax.set_ylim(0, 100)
    ax.legend(title="variant", fontsize=8)


def _plot_loss(chart: LossChart, ax: Any) -> None:
    """One line per run, one colour per variant (the legend names each variant once, with its run count); a log
    y axis, since a loss falls by orders of magnitude early and by percents late."""
    variants = sorted({run.variant for run in chart.runs})
    for run in chart.runs:
        k = variants.index(run.variant)
        count = sum(r.variant == run.variant for r in chart.runs)
        first = next(r for r in chart.runs if r.variant == run.variant) is run
        ax.plot([x for x, _ in run.trace], [y for _, y in run.trace], color=f"C{k}", lw=1.2, alpha=0.85,
                label=f"{run.variant} ({count} run{'s' * (count > 1)})" if first else None)
    ax.set_yscale("log")
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("training loss")
    ax.legend(title="variant", fontsize=8)
