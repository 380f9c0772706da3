"""What attack mode's CPU layers (randmix_bench/robustness/attack_mode.py) change, in one process: the time of one
forward and backward to the input (an attack step) with the model channels-last as before, and with GELU and eval
BatchNorm swapped as attacks now run it, alternating; and how far the logits move. One thread; ratios only.

    python benchmarks/attack_layers.py                      # the published small and medium full-s0 checkpoints
    python benchmarks/attack_layers.py --models randmix_convmixer_64_8 --batch 100 --rounds 6
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from randmix_bench.checkpoint import load_model
from randmix_bench.models import create_model
from randmix_bench.robustness.attack_mode import ChannelsLastInputs, attack_mode

from _machine import header

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = ["leaderboards/checkpoints/small/small-convmixer-fmnist-full-s0.safetensors",
             "leaderboards/checkpoints/medium/medium-convmixer64-fmnist-full-s0.safetensors"]


def step_ms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Milliseconds of one cross-entropy forward and backward to the input (what APGD-CE does per iteration)."""
    began = time.perf_counter()
    for _ in range(steps):
        xa = x.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
    return (time.perf_counter() - began) / steps * 1e3


def channels_last_only(model: nn.Module) -> nullcontext[nn.Module]:
    """Attack mode as it was before the CPU layers: eval, no weight gradients, channels-last. Set again for every
    use, since attack mode hands the parameters back in the standard layout."""
    return nullcontext(model.eval().requires_grad_(False).to(memory_format=torch.channels_last))


def measure(name: str, model: nn.Module, batch: int, rounds: int, steps: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(batch, 1, 28, 28, generator=gen), torch.randint(0, 10, (batch,), generator=gen)
    wrapped = ChannelsLastInputs(model)
    times: dict[str, list[float]] = {"channels-last": [], "+ CPU layers": []}
    for _ in range(rounds):
        for side in times:
            with attack_mode(model) if side == "+ CPU layers" else channels_last_only(model):
                step_ms(wrapped, x, y, 1)  # warm-up
                times[side].append(step_ms(wrapped, x, y, steps))
    with torch.no_grad():
        with channels_last_only(model):
            plain = wrapped(x)
        with attack_mode(model):
            swapped = wrapped(x)
    a, b = (statistics.median(t) for t in times.values())
    print(f"  {name}, batch {batch}: channels-last {a:.1f} ms a step, + CPU layers {b:.1f} ms: {a / b:.2f}x "
          f"(medians of {rounds} rounds x {steps} steps); logits move by at most {(swapped - plain).abs().max():.1e} "
          f"(largest |logit| {plain.abs().max():.1f})", flush=True)


def gelu_kernels(shape: tuple[int, int, int, int], rounds: int) -> None:
    """Exact GELU on a channels-last tensor: torch's own kernel, and oneDNN's through the NHWC view."""
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    sides = {"channels-last": lambda: F.gelu(x), "NHWC view": lambda: F.gelu(x.permute(0, 2, 3, 1))}
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(rounds):
        for side, gelu in sides.items():
            gelu()
            began = time.perf_counter()
            for _ in range(10):
                gelu()
            times[side].append((time.perf_counter() - began) / 10 * 1e3)
    a, b = (statistics.median(t) for t in times.values())
    print(f"  GELU forward on {'x'.join(map(str, shape))} channels-last values: torch's kernel {a:.2f} ms, "
          f"oneDNN's on the NHWC view {b:.2f} ms: {a / b:.2f}x", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=PUBLISHED, help="checkpoints (.safetensors) or model names")
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(header("1 thread", torch.__version__))
    for name in args.models:
        if name.endswith(".safetensors"):
            model, _ = load_model(REPO / name)
        else:
            model = create_model(name, in_chans=1, num_classes=10, mixing="full")
        measure(Path(name).stem, model, args.batch, args.rounds, args.steps)
    gelu_kernels((64, 64, 28, 28), args.rounds)  # the medium unshuffler's activations at batch 64


if __name__ == "__main__":
    main()
