"""CPU speed of randmix, side by side in one run, as ratios (issue #20): every measurement is a fresh process,
the sides alternate, each round is repeated, and the load average is printed with every number.

1. ``randmix eval --attack apgd-ce`` (whole process: start-up, data, clean pass, attack, result JSON) against a
   plain script running stock pyautoattack APGD-CE with torch's defaults (``AutoAttack(version="custom",
   attacks=["apgd-ce"])``, the same batch, seed, 5 restarts and 100 iterations), on an idle machine and while
   another process keeps one core busy; per-point outcomes compared (they must be identical).
2. With ``--with-benchmark``: ``randmix eval`` (AutoAttack standard) against robustbench's ``benchmark()`` (its
   loop, batch size and torch defaults) on ``--rb-examples`` points, robust accuracy compared.
3. The trainer on ``--recipe`` (the medium tier's): images/s with 1 and 2 threads and ``auto``, two one-thread jobs
   at once (``reproduce --jobs auto``), idle and with one core busy; a plain reference loop (NCHW, torch's default
   threads and waiting, no augmentation); the fraction of the CPU's fp32 matmul peak (FLOPs per image counted by
   torch's FlopCounterMode).
4. The medium tier's cost per job kind, extrapolated from these measurements.

    python benchmarks/cpu_speed.py                      # the published small checkpoint, 500 points
    python benchmarks/cpu_speed.py --repeats 1 --skip-eval
    python benchmarks/cpu_speed.py --repeats 5 --skip-train --skip-busy   # the idle eval ratio, more repeats
    git worktree add /tmp/before HEAD~1 && python benchmarks/cpu_speed.py --skip-train --skip-busy --before /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import nullcontext
from pathlib import Path

from _machine import REPO, header, load
from _trainer_step import TRAINER_STEP

DEFAULT_CKPT = "leaderboards/checkpoints/small/small-convmixer-fmnist-full-s0.safetensors"

# The plain user's script: torch first (so torch's default threads and OpenMP spin-waiting), stock pyautoattack.
STOCK_APGD = """
import sys, torch
from pyautoattack import AutoAttack
from randmix_bench.checkpoint import load_model
from randmix_bench.data import load_split
ckpt, dataset, out = sys.argv[1], sys.argv[2], sys.argv[6]
n, eps, bs = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
model, _ = load_model(ckpt)
split = load_split(dataset, False, None)
x, y = split.images[:n].float() / 255, split.labels[:n]
aa = AutoAttack(model, norm="Linf", eps=eps, version="custom", attacks=["apgd-ce"], seed=0)
aa.verbose = False
_, y_adv = aa.run_standard_evaluation(x, y, batch_size=bs)
torch.save((y_adv == y).to(torch.uint8), out)
"""

STOCK_BENCHMARK = """
import sys, torch
from randmix_bench.checkpoint import load_model
from randmix_bench.data import load_split
from randmix_bench.robustbench_interop import install_autoattack_shim, local_test_set
ckpt, dataset, n, eps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
install_autoattack_shim(seed=0)
from robustbench.eval import benchmark
model, _ = load_model(ckpt)
points = load_split(dataset, False, None).first(n)
with local_test_set(points, "cifar10"):
    clean, robust = benchmark(model, n_examples=n, dataset="cifar10", threat_model="Linf", eps=eps)
open(out, "w").write(repr(robust))
"""

# One training measurement: what ``randmix train`` runs for a step (_trainer_step.py), or a plain loop.
TRAIN_ARGS = """
import sys, time, json
plain = sys.argv[1] == "plain"
recipe, mixing, threads, steps = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
"""
# The user's loop as usually written, torch imported first (so its default threads and spin-waiting): NCHW, a random
# batch order, the recipe's optimizer.
PLAIN_STEP = """
import torch
import torch.nn.functional as F
from randmix_bench.data import load_split
from randmix_bench.recipes import get_recipe
from randmix_bench.tasks import task_for
from randmix_bench.vocab import Mixing
cfg = get_recipe(recipe).override(mixing=Mixing.parse(mixing))
split = load_split(cfg.dataset, True, None)
model, _ = cfg.build_model(task_for(cfg), split.info)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=cfg.weight_decay)
x_all, y_all = split.images.float() / 255, split.labels
def shuffled():
    while True:
        for idx in torch.randperm(len(y_all)).split(cfg.batch_size):
            yield x_all[idx], y_all[idx]
batches = shuffled()
def step():
    x, y = next(batches)
    loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
"""
# Ours: randmix_bench first, as the CLI (the thread policy's passive waiting), the memory policy, the thread count.
OURS_PRELUDE = """
from randmix_bench.allocator import keep_freed_memory
from randmix_bench.threads import parse_threads
keep_freed_memory()
threads = parse_threads(threads)
"""
TRAIN_MEASURE = """
flops = 0
if not plain:  # forward FLOPs counted, backward taken as twice them (FlopCounterMode overcounts grouped backward)
    from torch.utils.flop_counter import FlopCounterMode
    x, _ = next(batches)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    flops = 3 * counter.get_total_flops() / len(x)
step()
t = time.perf_counter()
for _ in range(steps):
    step()
seconds = time.perf_counter() - t
a = torch.randn(2048, 2048); b = torch.randn(2048, 2048); a @ b
t = time.perf_counter(); k = 0
while time.perf_counter() - t < 2:
    a @ b; k += 1
peak = k * 2 * 2048 ** 3 / (time.perf_counter() - t)
print(json.dumps({"ips": steps * cfg.batch_size / seconds, "flops_per_image": flops, "peak": peak,
                  "threads": torch.get_num_threads()}))
"""
TRAIN_PROBES = {"plain": TRAIN_ARGS + PLAIN_STEP + TRAIN_MEASURE,
                "ours": TRAIN_ARGS + OURS_PRELUDE + TRAINER_STEP + TRAIN_MEASURE}

ATTACK_PROBE = """
import sys, time, json
from randmix_bench.allocator import keep_freed_memory
keep_freed_memory()
import torch
from randmix_bench.models import create_model
from randmix_bench.robustness.attack_mode import ChannelsLastInputs, attack_mode
from randmix_bench.threads import parse_threads
torch.set_num_threads(parse_threads(sys.argv[2]))
model = create_model(sys.argv[1], in_chans=1, num_classes=10, mixing="chans")
x, y = torch.rand(250, 1, 28, 28), torch.randint(0, 10, (250,))
with attack_mode(model):
    wrapped = ChannelsLastInputs(model)
    def step():
        xa = x.clone().requires_grad_(True)
        with torch.enable_grad():
            torch.autograd.grad(torch.nn.functional.cross_entropy(wrapped(xa), y, reduction="none").sum(), xa)
    step()
    t = time.perf_counter(); k = 0
    while time.perf_counter() - t < 5:
        step(); k += 1
print(json.dumps({"point_iterations_per_s": k * 250 / (time.perf_counter() - t)}))
"""


def env(plain: bool, tree: Path = REPO) -> dict[str, str]:
    """The child's environment, with ``tree``'s randmix_bench on the path: a plain script gets torch's defaults (no
    OMP_WAIT_POLICY unless the user set it before this script ran), ours the thread policy."""
    e = {**os.environ, "PYTHONPATH": str(tree)}
    if plain and os.environ.get("RANDMIX_BENCH_USER_WAIT_POLICY") is None:
        e.pop("OMP_WAIT_POLICY", None)
    return e


def timed(cmd: list[str], plain: bool, tree: Path = REPO) -> float:
    began = time.perf_counter()
    subprocess.run(cmd, cwd=tree, env=env(plain, tree), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


class Busy:
    """Another process keeping one core busy for the duration of the block."""

    def __enter__(self) -> Busy:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def script(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


def eval_section(args: argparse.Namespace, tmp: Path) -> list[str]:
    import torch

    ckpt = tmp / "ckpt" / Path(args.checkpoint).name  # the result must share a folder with its checkpoint
    ckpt.parent.mkdir()
    ckpt.write_bytes((REPO / args.checkpoint).read_bytes())
    stock = script(tmp, "stock_apgd.py", STOCK_APGD)
    sides = ["ours", "stock"] + ([] if args.before is None else ["before"]) + \
        ([] if args.skip_busy else ["ours busy", "stock busy"])
    times: dict[str, list[float]] = {side: [] for side in sides}
    differ: dict[str, list[int]] = {side: [] for side in ("ours", "before") if side in times}
    for r in range(args.repeats):
        for side in times:
            out = tmp / f"{side.replace(' ', '-')}-{r}"
            if side.startswith("stock"):
                cmd = [sys.executable, str(stock), str(ckpt), args.dataset, str(args.n_examples), args.eps,
                       str(args.batch_size), str(out)]
            else:
                cmd = [sys.executable, "-m", "randmix_bench.cli", "eval", str(ckpt), "-d", args.dataset, "--attack",
                       "apgd-ce", "--eps", args.eps, "--n-examples", str(args.n_examples), "--device", "cpu",
                       "--out", str(ckpt.parent / f"{out.name}.json")]
            with Busy() if side.endswith("busy") else nullcontext():
                times[side].append(timed(cmd, side.startswith("stock"), args.before if side == "before" else REPO))
            print(f"  eval round {r + 1} {side:10s} {times[side][-1]:7.1f} s  (load {load()})", flush=True)
        stock_robust = torch.load(tmp / f"stock-{r}").tolist()
        for side, counts in differ.items():
            robust = json.loads((ckpt.parent / f"{side}-{r}.json").read_text())["randmix"]["points"]["robust"]
            counts.append(sum(a != b for a, b in zip(robust, stock_robust, strict=True)))
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        f"eval APGD-CE, {args.n_examples} points, Linf {args.eps}, batch {args.batch_size}, {args.checkpoint}; "
        f"median of {args.repeats} (all: " + "; ".join(f"{k} {', '.join(f'{t:.1f}' for t in v)} s"
                                                         for k, v in times.items()) + ")",
        f"  randmix eval vs stock pyautoattack script (idle):  {med['stock'] / med['ours']:.2f}x "
        f"({med['ours']:.1f} s vs {med['stock']:.1f} s)",
        "  per-point outcomes differing from stock, round by round (of " + f"{args.n_examples}): "
        + "; ".join(f"{side} {counts}" for side, counts in differ.items()),
    ]
    if args.before is not None:
        lines.insert(2, f"  randmix eval here vs the --before checkout ({args.before}): "
                        f"{med['before'] / med['ours']:.2f}x ({med['ours']:.1f} s vs {med['before']:.1f} s)")
    if not args.skip_busy:
        lines.insert(2, f"  with one core busy: randmix eval {med['ours busy'] / med['ours']:.2f}x slower than idle, "
                        f"the stock script {med['stock busy'] / med['stock']:.2f}x; randmix vs stock busy: "
                        f"{med['stock busy'] / med['ours busy']:.2f}x")
    if args.with_benchmark:
        bench = script(tmp, "stock_benchmark.py", STOCK_BENCHMARK)
        n = str(args.rb_examples)
        ours_t = timed([sys.executable, "-m", "randmix_bench.cli", "eval", str(ckpt), "-d", args.dataset, "--eps",
                        args.eps, "--n-examples", n, "--device", "cpu", "--out", str(ckpt.parent / "aa.json")], False)
        rb_t = timed([sys.executable, str(bench), str(ckpt), args.dataset, n, args.eps, str(tmp / "rb.txt")], True)
        ours_acc = json.loads((ckpt.parent / "aa.json").read_text())["randmix"]["robust_acc"]
        rb_acc = float((tmp / "rb.txt").read_text())
        lines.append(f"  randmix eval (AutoAttack standard) vs robustbench benchmark(), {n} points: "
                     f"{rb_t / ours_t:.2f}x ({ours_t:.1f} s vs {rb_t:.1f} s; robust {ours_acc:.4f} vs {rb_acc:.4f}; "
                     f"batch 250 vs benchmark()'s default, so random starts differ) (load {load()})")
    return lines


def train_probe(plain: bool, recipe: str, mixing: str, threads: str, steps: int,
                processes: int = 1) -> dict[str, float]:
    """One probe (or ``processes`` probes at once, their images/s summed: ``reproduce --jobs``' throughput)."""
    side = "plain" if plain else "ours"
    cmd = [sys.executable, "-c", TRAIN_PROBES[side], side, recipe, mixing, threads, str(steps)]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env(plain), stdout=subprocess.PIPE, text=True)
             for _ in range(processes)]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("a training probe failed")
    return {**results[0], "ips": sum(r["ips"] for r in results)}


def train_section(args: argparse.Namespace) -> tuple[list[str], float]:
    runs: dict[str, list[dict[str, float]]] = {}
    for r in range(args.repeats):
        for label, plain, threads, busy in [("ours 1 thread", False, "1", False), ("ours 2 threads", False, "2", False),
                                            ("ours auto", False, "auto", False), ("plain loop", True, "-", False),
                                            ("ours 2 jobs x 1 thread", False, "1", False),
                                            ("ours auto, 1 core busy", False, "auto", True),
                                            ("ours 2 jobs x 1 thread, 1 core busy", False, "1", True),
                                            ("plain loop, 1 core busy", True, "-", True)]:
            if busy and args.skip_busy:
                continue
            processes = 2 if "2 jobs" in label else 1
            with Busy() if busy else nullcontext():
                m = train_probe(plain, args.recipe, args.mixing, threads, args.train_steps, processes)
            runs.setdefault(label, []).append(m)
            print(f"  train round {r + 1} {label:36s} {m['ips']:7.0f} img/s, {m['threads']} threads "
                  f"(load {load()})", flush=True)
    ips = {k: statistics.median(m["ips"] for m in v) for k, v in runs.items()}
    auto = runs["ours auto"][0]
    best = max(ips["ours 1 thread"], ips["ours 2 threads"])
    peak = statistics.median(m["peak"] for m in runs["ours auto"])
    frac = ips["ours auto"] * auto["flops_per_image"] / peak
    lines = [
        f"train {args.recipe} ({args.mixing}), {args.train_steps} steps; median of {args.repeats}, img/s: "
        + ", ".join(f"{k} {v:.0f}" for k, v in ips.items()),
        f"  auto vs best fixed thread count (idle): {ips['ours auto'] / best:.2f}x",
        f"  two jobs at one thread each (reproduce --jobs auto) vs one job at auto: "
        f"{ips['ours 2 jobs x 1 thread'] / ips['ours auto']:.2f}x the images/s",
        f"  trainer vs plain reference loop (idle): {ips['ours auto'] / ips['plain loop']:.2f}x",
        f"  {auto['flops_per_image'] / 1e6:.0f} MFLOP per training image (3x forward); fp32 matmul peak "
        f"{peak / 1e9:.0f} GFLOP/s at {auto['threads']} threads; the trainer reaches {100 * frac:.0f} % of it",
    ]
    if not args.skip_busy:
        jobs = "ours 2 jobs x 1 thread"
        lines[2:2] = [
            f"  one core busy, slower than idle: one job at auto "
            f"{ips['ours auto'] / ips['ours auto, 1 core busy']:.2f}x, two jobs at one thread each "
            f"{ips[jobs] / ips[jobs + ', 1 core busy']:.2f}x (their images/s summed), the plain loop "
            f"{ips['plain loop'] / ips['plain loop, 1 core busy']:.2f}x",
            f"  trainer vs plain reference loop with one core busy: "
            f"{ips['ours auto, 1 core busy'] / ips['plain loop, 1 core busy']:.2f}x"]
    return lines, ips["ours auto"]


def medium_section(args: argparse.Namespace, tmp: Path, ips: float) -> list[str]:
    probe = script(tmp, "attack_probe.py", ATTACK_PROBE)
    out = subprocess.run([sys.executable, str(probe), "randmix_convmixer_64_8", "auto"], cwd=REPO, env=env(False),
                         check=True, capture_output=True, text=True).stdout
    pis = json.loads(out.strip().splitlines()[-1])["point_iterations_per_s"]
    train_s = 10 * 60000 / ips
    ce, t = 1000 * 100 * 5 / pis, 1000 * 9 * 100 / pis  # upper bounds: no point broken early
    return [
        f"medium tier, cost per job kind on this machine at auto threads (load {load()}):",
        f"  train ConvMixer-64/8, 10 epochs of Fashion-MNIST (600,000 images at {ips:.0f} img/s): "
        f"{train_s / 60:.0f} min",
        f"  attack forward+backward: {pis:.0f} point-iterations/s (batch 250); APGD-CE (5 restarts x 100 iterations) + "
        f"APGD-T (9 targets x 100) on 1000 points at Linf 2/255: at most {ce / 60:.0f} + {t / 60:.0f} min (every "
        "restart and target on every point; each point an attack breaks leaves the rest of them)",
    ]


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The evaluation both sides run (also ``eval_timeline.py``'s): the published checkpoint, its test points, eps."""
    p.add_argument("--checkpoint", default=DEFAULT_CKPT)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--n-examples", type=int, default=500)
    p.add_argument("--eps", default="0.015")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_eval_arguments(p)
    p.add_argument("--batch-size", type=int, default=250, help="the stock script's batch: randmix eval's default")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--with-benchmark", action="store_true")
    p.add_argument("--rb-examples", type=int, default=500)
    p.add_argument("--recipe", default="convmixer64-fashion-mnist")
    p.add_argument("--mixing", default="full")
    p.add_argument("--train-steps", type=int, default=8)
    p.add_argument("--skip-eval", action="store_true")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-busy", action="store_true", help="only the idle sides (the stock script busy takes minutes)")
    p.add_argument("--before", type=Path, help="another checkout of this project: its randmix eval as a third side, "
                   "to measure a change side by side (e.g. a git worktree of the commit before it)")
    args = p.parse_args()
    if args.before is not None:  # else a tree without the package would silently time this checkout's
        args.before = args.before.resolve()
        if not (args.before / "randmix_bench" / "__init__.py").is_file() or args.before == REPO:
            p.error(f"--before {args.before}: not another checkout of this project")

    import torch

    print(header(f"{len(os.sched_getaffinity(0))} usable", torch.__version__, "load at start"), flush=True)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if not args.skip_eval:
            lines += eval_section(args, tmp)
        if not args.skip_train:
            train_lines, ips = train_section(args)
            lines += train_lines + medium_section(args, tmp, ips)
    print("\n".join(["", *lines, f"load at end {load()}"]))


if __name__ == "__main__":
    main()
