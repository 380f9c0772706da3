"""What training a frozen variant gains from skipping the frozen weights' gradient
(randmix_bench/frozen_backward.py), in one process: the time of one training step (forward, loss, backward to every
learned parameter) with ``nn.Conv2d``'s forward as before and with ``FrozenConv2d``'s, alternating; whether the
output is the same bits, and how far the learned parameters' gradients move. One thread; ratios only.

    python benchmarks/frozen_conv_backward.py
    python benchmarks/frozen_conv_backward.py --rounds 5 --steps 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from randmix_bench.freezing import FrozenConv2d
from randmix_bench.models import create_model

from _machine import header

# (model, variant, batch): the medium tier's models at their recipes' batch sizes; `full` freezes nothing (control)
CASES = [("randmix_unshuffler_64_8", "chans", 64), ("randmix_convmixer_64_8", "chans", 512),
         ("randmix_convmixer_64_8", "chans-smooth", 512), ("randmix_convmixer_64_8", "space", 512),
         ("randmix_convmixer_64_8", "full", 512)]
SIDES: dict[str, Callable[..., torch.Tensor]] = {"before": nn.Conv2d.forward, "now": FrozenConv2d.forward}


def gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """One training step's output (as ``"output"``) and gradients: cross-entropy for a classifier, MSE to the input
    for an unshuffler."""
    model.zero_grad(set_to_none=True)
    out = model(x)
    (F.cross_entropy(out, y) if y is not None else F.mse_loss(out, x)).backward()
    return {"output": out.detach(), **{n: p.grad for n, p in model.named_parameters() if p.grad is not None}}


def measure(name: str, mixing: str, batch: int, rounds: int, steps: int) -> None:
    torch.manual_seed(0)
    unshuffler = "unshuffler" in name
    model = create_model(name, mixing=mixing, in_chans=1, **({} if unshuffler else {"num_classes": 10})).train()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 28, 28, generator=gen).contiguous(memory_format=torch.channels_last)
    y = None if unshuffler else torch.randint(0, 10, (batch,), generator=gen)
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    grads = {}
    try:
        for _ in range(rounds):
            for side, forward in SIDES.items():
                FrozenConv2d.forward = forward  # type: ignore[method-assign]
                grads[side] = gradients(model, x, y)  # warm-up, and the gradients compared below
                began = time.perf_counter()
                for _ in range(steps):
                    gradients(model, x, y)
                times[side].append((time.perf_counter() - began) / steps * 1e3)
    finally:
        FrozenConv2d.forward = SIDES["now"]  # type: ignore[method-assign]
    before, now = grads["before"], grads["now"]
    assert torch.equal(before.pop("output"), now.pop("output")), "the forward changed"
    same = sum(torch.equal(before[k], now[k]) for k in before)
    moved = max(((before[k] - now[k]).abs().max() / before[k].abs().max().clamp_min(1e-30)).item() for k in before)
    a, b = (statistics.median(t) for t in times.values())
    others = f", the others within {moved:.1e} of their largest value" if same < len(before) else ""
    print(f"  {name} {mixing}, batch {batch}: a step {a:.0f} ms before, {b:.0f} ms now: {a / b:.2f}x (medians of "
          f"{rounds} rounds x {steps} steps); the same output, {same} of {len(before)} gradients the same "
          f"bits{others}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(header("1 thread", torch.__version__))
    for name, mixing, batch in CASES:
        measure(name, mixing, batch, args.rounds, args.steps)


if __name__ == "__main__":
    main()
