"""Robustness curves drawn from the leaderboard's result files: robust accuracy against eps, one chart per
model, dataset, threat model and attack, one line per variant (mean over training seeds, a band for their spread).

A chart is a pure function of its :class:`Curve` data. The PNG carries the sha256 of that data in a text chunk,
so ``randmix leaderboard --check`` can tell a stale or hand-edited picture from a current one without
re-drawing it (PNG bytes differ between matplotlib versions; the data does not).
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from randmix_bench.claims import attack_label, variant_label, why_untrusted
from randmix_bench.files import atomic_path, png_text
from randmix_bench.results import RobustnessResult

__all__ = ["Point", "Series", "Curve", "curves", "fingerprint", "read_fingerprint", "draw"]

FINGERPRINT_KEY = "randmix:data-sha256"
FORMAT = "randmix-curve/2"  # bump when the drawing changes, so that --check asks for a redraw


@dataclass(frozen=True)
class Point:
    eps: str  # as the results write it, e.g. "2/255"; "0" for the clean accuracy
    eps_value: float
    mean: float  # percent
    spread: float | None  # sample standard deviation over runs, None for one run
    runs: int


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


def _point(eps: str, eps_value: float, values: list[float]) -> Point:
    spread = statistics.stdev(values) if len(values) > 1 else None
    return Point(eps, eps_value, statistics.fmean(values), spread, len(values))


def _stem(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts)).strip("-").lower()


def curves(results: Iterable[RobustnessResult]) -> list[Curve]:
    """The charts for these results: only ranked ones count (see :func:`claims.why_untrusted`); a chart needs
    at least one variant with more than the clean point. Each eps averages every run that measured it: the
    headline eps over all seeds, the sweep's other values over the runs that swept them."""
    charts: dict[tuple[str, str, str, str], dict[str, dict[tuple[float, str], list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for r in results:
        if why_untrusted(r) is not None:
            continue
        rb = r.randmix
        by_eps = charts[(rb.model, rb.dataset, rb.threat_model, attack_label(rb.attack))][
            variant_label(rb.mixing, rb.smooth_sigma)]
        by_eps[(0.0, "0")].append(float(r.clean_acc))
        measured = {(p.eps_value, p.eps): 100 * p.robust_acc for p in rb.sweep}
        measured.setdefault((rb.eps_value, r.eps), float(r.autoattack_acc))
        for key, value in measured.items():
            by_eps[key].append(value)
    out = []
    for (model, dataset, norm, attack), variants in sorted(charts.items()):
        series = tuple(
            Series(variant, tuple(_point(text, value, runs) for (value, text), runs in sorted(by_eps.items())))
            for variant, by_eps in sorted(variants.items()))
        if any(len(s.points) > 1 for s in series):
            out.append(Curve(_stem(dataset, model, norm, attack), f"{model} on {dataset}: {norm}, {attack}", series))
    return out


def fingerprint(curve: Curve) -> str:
    """sha256 of the chart's data and format: what the PNG must carry to be current."""
    payload = json.dumps({"format": FORMAT, **asdict(curve)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def read_fingerprint(path: Path) -> str | None:
    """The fingerprint a PNG carries, or None (no file, not a PNG, no such chunk)."""
    return png_text(path, FINGERPRINT_KEY)


def draw(curve: Curve, path: Path) -> None:
    """Write the chart as a PNG carrying its fingerprint (atomically: a reader never sees half a file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for s in curve.series:
        xs = [p.eps_value for p in s.points]
        ys = [p.mean for p in s.points]
        errors = [p.spread or 0.0 for p in s.points]
        runs = max(p.runs for p in s.points)
        (line,) = ax.plot(xs, ys, marker="o", markersize=4, label=f"{s.variant} ({runs} run{'s' * (runs > 1)})")
        ax.fill_between(xs, [y - e for y, e in zip(ys, errors, strict=True)],
                        [y + e for y, e in zip(ys, errors, strict=True)], color=line.get_color(), alpha=0.2, lw=0)
    ticks = {p.eps_value: p.eps for s in curve.series for p in s.points}
    ax.set_xticks(list(ticks), list(ticks.values()), rotation=45 if len(ticks) > 6 else 0)
    ax.set_xlabel("eps (0: clean accuracy)")
    ax.set_ylabel("accuracy % (mean, band ± sd over training seeds)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(curve.title, fontsize=10)
    ax.legend(title="variant", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={FINGERPRINT_KEY: fingerprint(curve), "Software": None})
    plt.close(fig)
