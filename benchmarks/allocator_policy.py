"""What the CPU memory policy (randmix_bench/allocator.py) gains: training steps of the medium tier's
ConvMixer-64/8 (the trainer's own pieces, its recipe's batch) and attack steps (forward and backward to the input,
attack mode, AutoAttack's batch of 250) in fresh processes, glibc's defaults and the policy alternating, round
after round; images (or points) per second, page faults per step, and whether the losses are the same bits.

    python benchmarks/allocator_policy.py
    python benchmarks/allocator_policy.py --rounds 5 --steps 6
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

DEFAULT_CKPT = "leaderboards/checkpoints/small/small-convmixer-fmnist-full-s0.safetensors"

# Both sides import randmix_bench first (so the same thread policy); then one step of the case's kind is defined.
PRELUDE = """
import json, resource, sys, time
kind, case, threads, steps, policy = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
from randmix_bench.allocator import keep_freed_memory
if policy:
    assert keep_freed_memory()
"""
ATTACK_STEP = """
import torch
from randmix_bench.checkpoint import load_model
from randmix_bench.robustness.attack_mode import ChannelsLastInputs, attack_mode
torch.set_num_threads(threads)
torch.manual_seed(0)
model, _ = load_model(case)
x, y = torch.rand(250, 1, 28, 28), torch.randint(0, 10, (250,))
attack_mode(model).__enter__()  # for the rest of the process
wrapped = ChannelsLastInputs(model)
def step():
    xa = x.clone().requires_grad_(True)
    with torch.enable_grad():
        loss = torch.nn.functional.cross_entropy(wrapped(xa), y, reduction="none").sum()
        torch.autograd.grad(loss, xa)
    return loss.detach()
"""
TIMED = """
per_step = cfg.batch_size if kind == "train" else len(x)
step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
began = time.perf_counter()
losses = [step().item() for _ in range(steps)]
seconds = time.perf_counter() - began
print(json.dumps({"per_s": steps * per_step / seconds, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                  - faults) / steps, "losses": losses}))
"""
PROBES = {"train": PRELUDE + "recipe, mixing = 'convmixer64-fashion-mnist', case\n" + TRAINER_STEP + TIMED,
          "attack": PRELUDE + ATTACK_STEP + TIMED}

SIDES = {"glibc defaults": "0", "memory kept": "1"}


def probe(kind: str, case: str, threads: int, steps: int, policy: str) -> dict[str, float | list[float]]:
    out = subprocess.run([sys.executable, "-c", PROBES[kind], kind, case, str(threads), str(steps), policy], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per side and case (medians reported)")
    p.add_argument("--steps", type=int, default=4, help="timed steps per process, after one warm-up step")
    p.add_argument("--checkpoint", default=DEFAULT_CKPT, help="the model the attack steps run on")
    args = p.parse_args()
    import torch

    print(header("1-2 threads as listed", torch.__version__), flush=True)
    cases = [("train", "full", 1), ("train", "chans", 1), ("train", "full", 2), ("attack", args.checkpoint, 1)]
    for kind, case, threads in cases:
        runs: dict[str, list[dict[str, float | list[float]]]] = {side: [] for side in SIDES}
        for _ in range(args.rounds):
            for side, policy in SIDES.items():
                runs[side].append(probe(kind, case, threads, args.steps, policy))
        speed = {side: statistics.median(float(r["per_s"]) for r in rs) for side, rs in runs.items()}
        faults = {side: statistics.median(float(r["faults"]) for r in rs) for side, rs in runs.items()}
        same = all(a["losses"] == b["losses"] for a, b in zip(*runs.values(), strict=True))
        unit = "img/s" if kind == "train" else "points/s"
        name = f"{kind} {Path(case).stem if kind == 'attack' else case}, {threads} thread(s)"
        print(f"  {name}: " + ", ".join(f"{side} {speed[side]:.0f} {unit} ({faults[side]:,.0f} page faults a step)"
                                        for side in SIDES)
              + f": {speed['memory kept'] / speed['glibc defaults']:.2f}x (medians of {args.rounds}); losses the "
              f"same bits: {same}  (load {load()})", flush=True)


if __name__ == "__main__":
    main()
