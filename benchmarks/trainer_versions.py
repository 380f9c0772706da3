"""The trainer's images/s in two checkouts of this project, side by side: issue #20's "today's images/s" (a
checkout from before the issue) against this one. Fresh processes alternate between the two, round after round;
each runs what ``randmix train`` runs for one recipe (the model channels-last, the trainer's optimizer, loader and
step; this checkout's process policy where it has one) for a few steps after one warm-up step. Ratios only.

    git worktree add /tmp/before f5c4134   # the trainer before issue #20, with the ConvMixer-64/8 registered
    python benchmarks/trainer_versions.py --before /tmp/before
    python benchmarks/trainer_versions.py --before /tmp/before --mixing full --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _machine import REPO, header, load
from _trainer_step import TRAINER_STEP

PROBE = """
import json, sys, time
recipe, mixing, threads, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import importlib.util
if importlib.util.find_spec("randmix_bench.allocator"):  # the checkout's memory policy, as its CLI applies it
    from randmix_bench.allocator import keep_freed_memory
    keep_freed_memory()
""" + TRAINER_STEP + """
step()
began = time.perf_counter()
losses = [step().item() for _ in range(steps)]
print(json.dumps({"ips": steps * cfg.batch_size / (time.perf_counter() - began), "losses": losses}))
"""


def probe(tree: Path, recipe: str, mixing: str, threads: int, steps: int) -> dict[str, float | list[float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if os.environ.get("RANDMIX_BENCH_USER_WAIT_POLICY") is None:  # each checkout's own threads policy, or none
        env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run([sys.executable, "-c", PROBE, recipe, mixing, str(threads), str(steps)], cwd=tree, env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=True, help="a checkout of this project to compare against")
    p.add_argument("--recipe", default="convmixer64-fashion-mnist", help="the recipe both sides train")
    p.add_argument("--mixing", nargs="+", default=["full", "chans"], help="variants, one case each")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch threads, one case each")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per side and case (medians reported)")
    p.add_argument("--steps", type=int, default=4, help="timed steps per process, after one warm-up step")
    args = p.parse_args()
    import torch

    sides = {"before": args.before.resolve(), "now": REPO}
    print(header("threads as listed", torch.__version__) + f" | before: {sides['before']}", flush=True)
    for mixing in args.mixing:
        for threads in args.threads:
            runs: dict[str, list[dict[str, float | list[float]]]] = {side: [] for side in sides}
            for _ in range(args.rounds):
                for side, tree in sides.items():
                    runs[side].append(probe(tree, args.recipe, mixing, threads, args.steps))
            ips = {side: [float(r["ips"]) for r in rs] for side, rs in runs.items()}
            med = {side: statistics.median(v) for side, v in ips.items()}
            drift = max(abs(a - b) for r, s in zip(*runs.values(), strict=True)
                        for a, b in zip(r["losses"], s["losses"], strict=True))  # type: ignore[arg-type]
            print(f"  {args.recipe} {mixing}, {threads} thread(s): before {med['before']:.0f} img/s "
                  f"({', '.join(f'{v:.0f}' for v in ips['before'])}), now {med['now']:.0f} img/s "
                  f"({', '.join(f'{v:.0f}' for v in ips['now'])}): {med['now'] / med['before']:.2f}x "
                  f"(medians of {args.rounds}); losses differ by at most {drift:.1e}  (load {load()})", flush=True)


if __name__ == "__main__":
    main()
