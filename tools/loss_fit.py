#!/usr/bin/env python3
"""Would longer training flatten this run's loss? A power law fitted to the loss trace a checkpoint recorded.

``python tools/loss_fit.py leaderboards/checkpoints/medium/medium-unshuffle64-fmnist-full-s0.safetensors``

Fits, over the trace from ``--start`` epochs to the start of the last fifth (before the schedule's final decay):
``log L = log c - a log t`` (scipy's ``linregress``) and ``L = floor + c t^-a`` (``curve_fit``). Under a pure
power law a run of any length falls by ``1 - 0.8^a`` over its last fifth, so when no floor shows, no longer
training meets ``loss_curve.FLAT_RULE`` either: what the README's medium-tier paragraph quotes (issue #21).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy.optimize import curve_fit
from scipy.stats import linregress

from randmix_bench import loss_curve
from randmix_bench.checkpoint import read_checkpoint
from randmix_bench.errors import RandmixError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="an unshuffler (or classifier) checkpoint that recorded its loss trace")
    parser.add_argument("--start", type=float, default=0.5, help="first epoch fraction fitted (skips the warm-up)")
    args = parser.parse_args()
    try:
        _, meta = read_checkpoint(args.checkpoint)
        trace = meta["extra"].get("loss_trace")
        if not trace:
            raise RandmixError(f"{args.checkpoint}: no loss trace recorded; use a checkpoint this version trained")
        points = np.array(loss_curve.check_trace(trace, args.checkpoint, math.inf))
    except RandmixError as e:
        raise SystemExit(str(e)) from None
    end = (1 - loss_curve.FLAT_WINDOW) * points[-1, 0]
    t, loss = points[(points[:, 0] >= args.start) & (points[:, 0] < end)].T
    if len(t) < 4:
        raise SystemExit(f"{args.checkpoint}: {len(t)} trace point(s) between {args.start:g} and {end:g} epochs; "
                         "lower --start")
    line = linregress(np.log(t), np.log(loss))
    a = -line.slope
    (floor, c, a_floor), cov = curve_fit(lambda x, f, c, a: f + c * x ** -a, t, loss, p0=(0.0, loss[0], a),
                                         maxfev=20_000)
    print(f"{len(t)} points, epochs {t[0]:g} to {t[-1]:g}")
    rule = f"{100 * loss_curve.FLAT_DROP:g} %"
    print(f"power law: exponent {a:.3f}, R^2 {line.rvalue ** 2:.3f}; a run of any length falls "
          f"{100 * (1 - 0.8 ** a):.1f} % over its last fifth under it (the rule: under {rule})")
    print(f"with a floor: floor {floor:.5f} +- {math.sqrt(cov[0, 0]):.5f}, exponent {a_floor:.3f}; "
          f"last recorded loss {points[-1, 1]:.5f}")
    print(f"the trace's own last fifth: {loss_curve.flattened(points.tolist())}")


if __name__ == "__main__":
    main()
