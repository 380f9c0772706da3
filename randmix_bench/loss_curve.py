"""The training-loss curve of a run: a trace of mean losses at a fixed count of points per epoch, and the rule
that says whether it had flattened when training stopped.

The trainer sums each step's loss into one of :data:`POINTS_PER_EPOCH` bins on the device (no extra host sync)
and stores each epoch's bin means in its ``run.json`` history entry (``loss_trace``) and the whole trace in the
checkpoint; ``randmix shuffle eval`` copies it into the result, which the leaderboard draws. A trace is a list of
``[epoch_fraction, loss]`` pairs: the point's x is the middle of its bin in epochs since the start of the run
(0.05 is the mean over the first tenth of epoch 1), so traces of runs with different epochs share an axis.
Light on purpose (no torch): result files validate their trace with :data:`LossTrace`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum
from itertools import pairwise
from statistics import linear_regression
from typing import Annotated, Any

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

from randmix_bench.errors import RandmixError
from randmix_bench.vocab import n_epochs

__all__ = ["POINTS_PER_EPOCH", "MAX_EPOCHS", "MAX_POINTS", "LossTrace", "FLAT_WINDOW", "FLAT_DROP", "FLAT_RULE", "bins",
           "epoch_trace", "from_history", "check_trace", "last_drop", "Trend", "trend", "flattened"]

POINTS_PER_EPOCH = 10
MAX_EPOCHS = 10_000
"""The longest training the trainer runs (recipes take tens to hundreds of epochs): more is a typo, refused before
any work, and no result records more."""
MAX_POINTS = POINTS_PER_EPOCH * MAX_EPOCHS
"""The longest trace the trainer writes: a longer list is a hand-edited file."""


def _increasing(trace: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Fractions of a run go forward: a trace whose x values repeat or go back was edited or spliced."""
    if any(b[0] <= a[0] for a, b in pairwise(trace)):
        raise ValueError("epoch fractions must strictly increase along the trace")
    return trace


LossTrace = Annotated[
    list[tuple[Annotated[float, Field(gt=0, allow_inf_nan=False)], Annotated[float, Field(ge=0, allow_inf_nan=False)]]],
    Field(min_length=1, max_length=MAX_POINTS), AfterValidator(_increasing),
]
"""``[[epoch_fraction, loss], ...]``: fractions positive and strictly increasing, losses finite and >= 0 (the
reconstruction and classification losses are), at most :data:`MAX_POINTS` points."""

_ADAPTER: TypeAdapter[list[tuple[float, float]]] = TypeAdapter(LossTrace)


def bins(steps: int) -> list[int]:
    """Which bin each of an epoch's ``steps`` steps adds its loss to: ``i * POINTS_PER_EPOCH // steps``."""
    return [i * POINTS_PER_EPOCH // steps for i in range(steps)]


def epoch_trace(epoch: int, steps: int, sums: Sequence[float]) -> list[list[float]]:
    """Epoch ``epoch``'s (0-based) trace points from its per-bin loss sums: the bin's mean loss at the middle of its
    steps; empty bins (an epoch of fewer steps than bins) give no point."""
    index = bins(steps)
    out = []
    for b, total in enumerate(sums):
        mine = [i for i, j in enumerate(index) if j == b]
        if mine:
            middle = (mine[0] + mine[-1] + 1) / 2 / steps
            out.append([round(epoch + middle, 6), float(f"{total / len(mine):.6g}")])
    return out


def from_history(history: Sequence[dict[str, Any]]) -> list[list[float]]:
    """A run's trace from its ``run.json`` history: each epoch's ``loss_trace``, or for an epoch recorded before
    traces were (one ``train_loss`` per epoch) its mean loss at the epoch's middle."""
    out: list[list[float]] = []
    for h in history:
        out += h.get("loss_trace") or [[h["epoch"] - 0.5, h["train_loss"]]]
    return out


def check_trace(value: Any, source: str, epochs: float) -> list[tuple[float, float]]:
    """``value`` as a valid trace (see :data:`LossTrace`) of a run of ``epochs`` epochs, or a one-line error naming
    ``source``."""
    try:
        trace = _ADAPTER.validate_python(value)
        if trace[-1][0] > epochs:
            raise ValueError(f"its last point is at epoch {trace[-1][0]:g}, after the {n_epochs(epochs)} trained")
        return trace
    except (ValidationError, ValueError) as e:
        message = str(e)
        if isinstance(e, ValidationError):
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = (where + ": " if where else "") + first["msg"].removeprefix("Value error, ")
        raise RandmixError(f"{source}: the loss trace is not valid ({message}); retrain, or use a run randmix "
                           "wrote") from None


FLAT_WINDOW = 0.2
FLAT_DROP = 0.02
FLAT_RULE = (f"a run's training loss has flattened when a least-squares line through the last {100 * FLAT_WINDOW:g} % "
             f"of its trace (the points from the first at or after {100 * (1 - FLAT_WINDOW):g} % of the last "
             f"point's epoch fraction, each the mean loss over a 1/{POINTS_PER_EPOCH} epoch) falls or rises across "
             f"them by less than {100 * FLAT_DROP:g} % of its higher end (the line floored at 0); fewer than two "
             "points there: too coarse to say")


def last_drop(trace: Sequence[Sequence[float]]) -> float | None:
    """The relative drop of the loss over the last :data:`FLAT_WINDOW` of the trace (see :data:`FLAT_RULE`), in
    [-1, 1], negative when it rose; None when fewer than two points lie there. It is read off a least-squares line
    through the window's points, not off its two end points: a tenth of an epoch's mean loss scatters by about a
    percent around such a line (0.7-1.8 % on the medium tier's unshufflers), which two points alone would put
    straight into a 2 % rule."""
    end = trace[-1][0]
    window = [(x, loss) for x, loss in trace if x >= (1 - FLAT_WINDOW) * end]
    if len(window) < 2:
        return None
    xs, losses = zip(*window, strict=True)
    top = max(losses)
    if not top > 0:
        return 0.0  # a loss of 0 throughout is as flat as a loss gets
    slope, intercept = linear_regression(xs, [loss / top for loss in losses])  # scaled to at most 1: no overflow
    first, last = (max(intercept + slope * x, 0.0) for x in (xs[0], xs[-1]))
    return (first - last) / max(first, last)  # the line crosses the points' mean (> 0), so one end is above 0


def _judged_drop(trace: Sequence[Sequence[float]] | None) -> float | None:
    """:func:`last_drop` where :data:`FLAT_RULE` can judge it: None without a trace or when too coarse to say."""
    drop = last_drop(trace) if trace else None
    return None if drop is None or math.isnan(drop) else drop


class Trend(Enum):
    """:data:`FLAT_RULE`'s verdict on a trace."""

    FALLING = "still falling"
    RISING = "rising"
    FLAT = "flattened"


def _trend(drop: float) -> Trend:
    return Trend.FLAT if abs(drop) < FLAT_DROP else Trend.RISING if drop < 0 else Trend.FALLING


def trend(trace: Sequence[Sequence[float]] | None) -> Trend | None:
    """:data:`FLAT_RULE`'s verdict on ``trace``: None without a trace or when it is too coarse to say."""
    drop = _judged_drop(trace)
    return None if drop is None else _trend(drop)


def flattened(trace: Sequence[Sequence[float]] | None) -> str:
    """:data:`FLAT_RULE`'s verdict in words: ``flattened``, ``still falling (−x % over the last fifth)``, ``rising
    (+x % ...)``, or why there is none."""
    if not trace:
        return "no loss trace recorded"
    drop = _judged_drop(trace)
    if drop is None:
        return "trace too coarse to say"
    said = _trend(drop)
    if said is Trend.FLAT:
        return said.value
    return f"{said.value} ({'+' if drop < 0 else '−'}{100 * abs(drop):.1f} % over the last fifth)"
