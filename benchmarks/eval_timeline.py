"""Where the whole ``randmix eval`` command of ``cpu_speed.py`` spends its time, beside the stock pyautoattack script
it is compared with (issue #20): each run once in a fresh process, its phases timed from the lines it prints
(start-up to the attack, the attack, writing the result, the interpreter's exit); the imports of each side by
``python -X importtime``; the import and exit times with the collector as Python leaves it and as the CLI runs the
imports (frozen); and one attack batch under torch.profiler, its CPU time by operator (the profiler slows
the run: shares, not times).

    python benchmarks/eval_timeline.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import header, load
from cpu_speed import REPO, STOCK_APGD, add_eval_arguments, env


def _marked(script: str, marks: dict[str, str]) -> str:
    """``script`` with ``print(mark)`` before each line starting as a key of ``marks``, and ``saved`` at its end."""
    for line_start, mark in marks.items():
        script = script.replace(line_start, f"print('{mark}', flush=True)\n{line_start}")
    return script + "print('saved')\n"


# The stock script with a line printed after each phase (nothing else changed).
MARKED_STOCK = _marked(STOCK_APGD, {"model, _ = load_model(ckpt)": "imported", "aa = AutoAttack(": "loaded",
                                    "torch.save(": "attacked"})
# The stock script's imports, and ours (the CLI's eval command).
IMPORTS = {"stock": "import torch, pyautoattack\nfrom randmix_bench.checkpoint import load_model\n"
                    "from randmix_bench.data import load_split",
           "ours": "import randmix_bench.cli.app, randmix_bench.cli.commands_eval"}

PROFILE = """
import sys, torch
from torch.profiler import ProfilerActivity, profile
from randmix_bench.allocator import keep_freed_memory
from randmix_bench.checkpoint import load_model
from randmix_bench.data import load_split
from randmix_bench.robustness.attack_mode import ChannelsLastInputs, attack_mode
from pyautoattack import AutoAttack
keep_freed_memory()
torch.set_num_threads(1)
model, _ = load_model(sys.argv[1])
split = load_split(sys.argv[2], False, None)
x, y = split.images[:500].float() / 255, split.labels[:500]
with attack_mode(model):
    wrapped = ChannelsLastInputs(model)
    with torch.no_grad():
        first = (wrapped(x).argmax(1) == y).nonzero().flatten()[:250]  # the first batch an attack meets
    aa = AutoAttack(wrapped, norm="Linf", eps=float(sys.argv[3]), version="custom", attacks=["apgd-ce"], seed=0)
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.no_grad():
        aa.apgd.perturb(x[first], y[first])
rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
total = sum(e.self_cpu_time_total for e in rows)
for e in rows[:10]:
    print(f"    {e.key:28s} {100 * e.self_cpu_time_total / total:5.1f} %  ({e.count} calls)")
"""


def timeline(cmd: list[str], plain: bool) -> list[tuple[float, str]]:
    """``(seconds since the start, line)`` for each line the command prints, then ``"exit"``."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(plain), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    lines = [(time.perf_counter() - began, line.rstrip()) for line in proc.stdout]
    if proc.wait():
        raise SystemExit(f"{cmd[:3]} failed:\n" + "\n".join(text for _, text in lines[-5:]))
    return [*lines, (time.perf_counter() - began, "exit")]


def at(lines: list[tuple[float, str]], marker: str, last: bool = False) -> float:
    times = [t for t, text in lines if marker in text]
    return times[-1] if last else times[0]


def import_seconds(code: str, plain: bool) -> float:
    """Seconds of the top-level imports ``python -X importtime`` reports for ``code``."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=REPO, env=env(plain),
                         capture_output=True, text=True, check=True).stderr
    rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:")]
    return sum(int(r[1]) for r in rows if r[1].strip().isdigit() and not r[2].startswith("  ")) / 1e6


# The eval command's imports, then nothing: with the collector as Python leaves it, or through the CLI's own
# context manager, as its lazy group imports a command (randmix_bench.cli.app._long_lived_imports).
COLLECTOR = {"as Python leaves it": "plain", "frozen as the CLI does": "frozen"}
COLLECTOR_PROBE = """
import gc, sys, time
from contextlib import nullcontext
began = time.perf_counter()
from randmix_bench.cli.app import _long_lived_imports
with _long_lived_imports() if sys.argv[1] == "frozen" else nullcontext():
    import randmix_bench.cli.commands_eval
print(f"{time.perf_counter() - began:.3f} {gc.get_stats()[2]['collections']}", flush=True)
"""


def collector_rows(rounds: int = 3) -> list[str]:
    """Seconds to import and to exit, and the full collections while importing, each way of ``COLLECTOR`` in turn."""
    seen: dict[str, list[tuple[float, float, int]]] = {way: [] for way in COLLECTOR}
    for _ in range(rounds):
        for way, arg in COLLECTOR.items():
            *_, (printed, line), (ended, _) = timeline([sys.executable, "-c", COLLECTOR_PROBE, arg], plain=False)
            imported, full = line.split()
            seen[way].append((float(imported), ended - printed, int(full)))
    return [f"    {way:22s} imports {', '.join(f'{i:.2f}' for i, _, _ in runs)} s ({runs[0][2]} full collections), "
            f"exit {', '.join(f'{e:.2f}' for _, e, _ in runs)} s" for way, runs in seen.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_eval_arguments(p)
    args = p.parse_args()
    import torch

    print(header("2 usable, idle", torch.__version__), flush=True)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        ckpt = tmp / "ckpt" / Path(args.checkpoint).name  # the result must share a folder with its checkpoint
        ckpt.parent.mkdir()
        ckpt.write_bytes((REPO / args.checkpoint).read_bytes())
        ours = timeline([sys.executable, "-m", "randmix_bench.cli", "eval", str(ckpt), "-d", args.dataset, "--attack",
                         "apgd-ce", "--eps", args.eps, "--n-examples", str(args.n_examples), "--device", "cpu",
                         "--out", str(ckpt.parent / "ours.json")], plain=False)
        stock_script = tmp / "stock.py"
        stock_script.write_text(MARKED_STOCK)
        stock = timeline([sys.executable, str(stock_script), str(ckpt), args.dataset, str(args.n_examples), args.eps,
                          "250", str(tmp / "stock.pt")], plain=True)
        attack_start, attack_end = at(ours, "to attack"), at(ours, "points, robust acc", last=True)
        print(f"randmix eval, {args.n_examples} points, APGD-CE, Linf {args.eps}, {args.checkpoint} (load {load()}):")
        print(f"  start-up to the attack {attack_start:.2f} s, the attack {attack_end - attack_start:.2f} s, the "
              f"result (full-test clean accuracy, JSON) {at(ours, 'wrote') - attack_end:.2f} s, exit "
              f"{ours[-1][0] - at(ours, 'wrote'):.2f} s: {ours[-1][0]:.2f} s")
        marks = [at(stock, m) for m in ("imported", "loaded", "attacked", "saved")] + [stock[-1][0]]
        print(f"  stock script: imports {marks[0]:.2f} s, model and data {marks[1] - marks[0]:.2f} s, the attack "
              f"{marks[2] - marks[1]:.2f} s, saving {marks[3] - marks[2]:.2f} s, exit {marks[4] - marks[3]:.2f} s: "
              f"{marks[4]:.2f} s")
        print("  imports by python -X importtime: " + ", ".join(
            f"{side} {import_seconds(code, side == 'stock'):.2f} s" for side, code in IMPORTS.items()))
        print("  the eval command's imports and the interpreter's exit, by the collector's handling (3 rounds):",
              *collector_rows(), sep="\n", flush=True)
        print("  one attack batch (the first 250 correct points, one thread) under torch.profiler, CPU time by op:",
              flush=True)
        profiled = subprocess.run([sys.executable, "-c", PROFILE, str(ckpt), args.dataset, args.eps], cwd=REPO,
                                  env=env(False), capture_output=True, text=True)  # the profiler's own log: stderr
        if profiled.returncode:
            raise SystemExit(f"the profiled attack failed:\n{profiled.stderr[-2000:]}")
        print(profiled.stdout, end="")


if __name__ == "__main__":
    main()
