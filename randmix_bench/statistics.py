"""The statistics behind the claim verdicts: one method, on scipy, vectorised so tests can calibrate it.

**What is compared.** Two variants A and B of one study, each trained with k_A and k_B seeds (a run = one
checkpoint). The effect is D = mean over A's runs of their accuracy − the same for B. Seeds are the unit of
replication; the test points are a sample from the data distribution, and every run of both variants is
measured on the *same* points.

**Its standard error** (a paired per-point model, not a bootstrap: with 3 seeds a seed bootstrap resamples 3
values, underestimates the variance and ignores that t has 2-4 degrees of freedom)::

    se² = s²_A / k_A + s²_B / k_B + τ² / n

- s²_v: the sample variance of variant v's run accuracies (seed-to-seed spread; it already holds the
  Bernoulli noise of each run's n outcomes, so no binomial floor is added on top: that counted the
  point noise twice, and unpaired, while both variants meet the same points);
- τ²: the variant-by-point interaction, the spread over points of the true per-point difference, the only
  part of point sampling that does not cancel in the paired difference (a hard point is hard for both).
  It is estimated as the variance over points of the seed-averaged per-point difference e_i minus the
  mean within-point seed noise of e_i (per-point variance over runs, of outcomes centred on their run's
  accuracy so a run's overall shift is not counted here, divided by k), floored at 0: what s² already
  holds is subtracted, so nothing counts twice.

Degrees of freedom by Welch-Satterthwaite over the three terms (k_A − 1, k_B − 1, n − 1), capped at
k_A + k_B − 2, what the seeds provide: τ² comes from many points, but crediting its df lets a seed variance
that is small by chance buy a large df, and the calibration (``tests/test_statistics.py``) found that lifts
false positives in the tail Holm uses (about 1.2 % at a nominal 0.83 %). Two-sided p and the 95 % interval
from Student's t (:mod:`scipy.stats`). Without per-point outcomes (older result files)
τ² cannot be estimated and the test is Welch's on the run accuracies alone ("seed-level only"; it leaves
out the interaction term, so it is a little optimistic).

Within a family (all pairs of one table) p-values are adjusted by Holm's step-down method, which controls
the chance of any false "significant" in the family at ``ALPHA`` for any dependence between the tests.
"Nearly matches" is an equivalence question: two one-sided tests (TOST) against a stated margin.
:func:`min_detectable` gives the difference that the same t model finds with 80 % power.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

__all__ = ["ALPHA", "POWER", "Difference", "difference", "holm", "Equivalence", "equivalence", "min_detectable"]

ALPHA = 0.05
"""Two-sided level of every test, and the family-wise level after Holm."""
POWER = 0.8
"""The power at which :func:`min_detectable` states a detectable difference."""

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Difference:
    """A − B with its standard error, degrees of freedom and two-sided p (arrays over any leading
    replicate axes; 0-d for one comparison). ``se`` is 0 when every run agrees exactly: p is then nan."""

    effect: Array
    se: Array
    df: Array

    @property
    def p(self) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.where(self.se > 0, 2 * stats.t.sf(np.abs(self.effect) / self.se, self.df), np.nan))

    def interval(self, level: float = 1 - ALPHA) -> tuple[Array, Array]:
        half = stats.t.ppf(0.5 + level / 2, self.df) * self.se
        return self.effect - half, self.effect + half


def _welch(terms: list[tuple[Array, Array | float]]) -> tuple[Array, Array]:
    """se and Welch-Satterthwaite df of a sum of variance ``terms`` given as (variance, its df)."""
    se2 = sum(v for v, _ in terms)
    se2 = np.where(se2 > 1e-24, se2, 0.0)  # runs that agree exactly leave rounding noise, not a variance
    denominator = sum(v**2 / df for v, df in terms)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denominator > 0, se2**2 / np.where(denominator > 0, denominator, 1), np.inf)
    return np.sqrt(np.asarray(se2, dtype=float)), np.asarray(df, dtype=float)


def difference(a: ArrayLike, b: ArrayLike, points: bool = False) -> Difference:
    """A − B from run values ``a`` (..., k_A) and ``b`` (..., k_B), or with ``points=True`` from 0/1
    per-point outcomes (..., k_A, n) and (..., k_B, n) on the same points in the same order."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not points:
        ka, kb = a.shape[-1], b.shape[-1]
        if min(ka, kb) < 2:
            raise ValueError("each variant needs at least 2 runs for a seed variance")
        va, vb = a.var(-1, ddof=1) / ka, b.var(-1, ddof=1) / kb
        se, df = _welch([(va, ka - 1), (vb, kb - 1)])
        return Difference(a.mean(-1) - b.mean(-1), se, df)
    (ka, n), (kb, nb) = a.shape[-2:], b.shape[-2:]
    if n != nb or n < 2 or min(ka, kb) < 2:
        raise ValueError("per-point outcomes need the same points (at least 2) and at least 2 runs per variant")
    acc_a, acc_b = a.mean(-1), b.mean(-1)  # (..., k)
    va, vb = acc_a.var(-1, ddof=1) / ka, acc_b.var(-1, ddof=1) / kb
    e = a.mean(-2) - b.mean(-2)  # seed-averaged per-point difference, (..., n)
    within = ((a - acc_a[..., None]).var(-2, ddof=1) / ka + (b - acc_b[..., None]).var(-2, ddof=1) / kb).mean(-1)
    interaction = np.maximum(e.var(-1, ddof=1) - within, 0.0) / n
    se, df = _welch([(va, ka - 1), (vb, kb - 1), (interaction, n - 1)])
    return Difference(acc_a.mean(-1) - acc_b.mean(-1), se, np.minimum(df, ka + kb - 2))


def holm(p: ArrayLike) -> Array:
    """Holm's step-down adjusted p-values over the last axis (nan p-values stay nan and do not count)."""
    p = np.asarray(p, dtype=float)
    m = np.sum(~np.isnan(p), axis=-1, keepdims=True)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=-1)
    ranked = np.take_along_axis(p, order, -1)
    factor = m - np.arange(p.shape[-1])
    adjusted = np.minimum(1.0, np.fmax.accumulate(ranked * factor, axis=-1))
    out = np.empty_like(p)
    np.put_along_axis(out, order, adjusted, -1)
    return np.where(np.isnan(p), np.nan, out)


@dataclass(frozen=True)
class Equivalence:
    """TOST of |A − B| < margin: ``p_inside`` small means equivalent within the margin, ``p_outside``
    small means the difference lies beyond it: the one-sided test on the side the estimate is on, doubled because
    that side was chosen after seeing the estimate (below 0.05 exactly when the 95 % interval lies beyond the
    margin)."""

    p_inside: Array
    p_outside: Array


def equivalence(d: Difference, margin: float) -> Equivalence:
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = (d.effect + margin) / d.se, (d.effect - margin) / d.se
    inside = np.maximum(stats.t.sf(low, d.df), stats.t.cdf(high, d.df))
    outside = np.minimum(1.0, 2 * np.minimum(stats.t.cdf(low, d.df), stats.t.sf(high, d.df)))
    defined = d.se > 0
    return Equivalence(np.where(defined, inside, np.nan), np.where(defined, outside, np.nan))


def _power(delta: float, se: float, df: float, alpha: float) -> Any:
    critical = stats.t.ppf(1 - alpha / 2, df)
    nc = delta / se
    # the wrong-sign tail is negligible once nc is large, where scipy's nct can return nan for it
    return stats.nct.sf(critical, df, nc) + np.nan_to_num(stats.nct.cdf(-critical, df, nc))


def min_detectable(se: float, df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The true difference a two-sided t-test at ``alpha`` (Holm's worst case in a family of m tests:
    ALPHA / m) finds with probability ``power``, for this standard error and df (noncentral t)."""
    if not (se > 0 and df > 0):
        return float("nan")
    hi = se
    while _power(hi, se, df, alpha) < power:
        hi *= 2
    return float(optimize.brentq(lambda x: _power(x, se, df, alpha) - power, 0.0, hi, xtol=se * 1e-6))
