"""What attack mode's CPU layers (randmix_bench/robustness/attack_mode.py) change, in one process: the time of one
forward and backward to the input (an attack step) with the model channels-last as before, and with GELU, eval
BatchNorm and the patch embedding swapped as attacks now run it, alternating; and how far the logits move; then
each swapped kernel against the one it replaces, on the published models' shapes. One thread; ratios only.

    python benchmarks/attack_layers.py                      # the published small and medium full-s0 checkpoints
    python benchmarks/attack_layers.py --models randmix_convmixer_64_8 --batch 100 --rounds 6
    python benchmarks/attack_layers.py --published-bits     # does the patch embedding's swap change a published bit?
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from unittest.mock import patch

import torch
import torch.nn.functional as F
from torch import nn

from randmix_bench.checkpoint import load_model
from randmix_bench.data import ImageSplit, load_split
from randmix_bench.models import create_model
from randmix_bench.robustness.attack_mode import ChannelsLastInputs, PatchEmbedMatmul, attack_mode
from randmix_bench.tensors import to_unit
from randmix_bench.vocab import TaskKind

from _machine import REPO, header

# one point, odd sizes (the points an attack has left; 192, the second batch of cpu_speed.py's eval), AutoAttack's
BIT_BATCHES = (1, 7, 100, 192, 250)
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
    """An attack step channels-last only, with every CPU layer but the patch embedding's matmul, and with all."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(batch, 1, 28, 28, generator=gen), torch.randint(0, 10, (batch,), generator=gen)
    wrapped = ChannelsLastInputs(model)
    sides: dict[str, Callable[[], AbstractContextManager[object]]] = {
        "channels-last": lambda: channels_last_only(model),
        "+ CPU layers but the stem": lambda: _without_stem(attack_mode(model)),
        "+ CPU layers": lambda: attack_mode(model)}
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(rounds):
        for side, mode in sides.items():
            with mode():
                step_ms(wrapped, x, y, 1)  # warm-up
                times[side].append(step_ms(wrapped, x, y, steps))
    with torch.no_grad():
        with channels_last_only(model):
            plain = wrapped(x)
        with attack_mode(model):
            swapped = wrapped(x)
    a, b, c = (statistics.median(t) for t in times.values())
    print(f"  {name}, batch {batch}: channels-last {a:.1f} ms a step, + CPU layers but the stem {b:.1f} ms, + CPU "
          f"layers {c:.1f} ms: {a / c:.2f}x in all, the stem's matmul {b / c:.2f}x (medians of {rounds} rounds x "
          f"{steps} steps); logits move by at most {(swapped - plain).abs().max():.1e} (largest |logit| "
          f"{plain.abs().max():.1f})", flush=True)


@contextmanager
def _without_stem(mode: AbstractContextManager[None]) -> Iterator[None]:
    """``mode`` (attack mode) with the patch embedding left to oneDNN."""
    with patch.object(PatchEmbedMatmul, "fits", return_value=False), mode:
        yield


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


def patch_embed_kernels(batch: int, in_chans: int, size: int, patch_size: int, dim: int, rounds: int) -> None:
    """A patch embedding's forward and input gradient (channels-last, as attacks run it): the convolution through
    oneDNN, and :class:`PatchEmbedMatmul`; and whether they give the same bits."""
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size).requires_grad_(False)
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.rand(batch, in_chans, size, size, generator=gen).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(batch, dim, size // patch_size, size // patch_size, generator=gen).contiguous(
        memory_format=torch.channels_last)
    sides = {"convolution": conv, "matmul": PatchEmbedMatmul(conv)}
    times: dict[str, list[float]] = {side: [] for side in sides}
    outputs = {}
    for _ in range(rounds):
        for side, layer in sides.items():
            began = time.perf_counter()
            for _ in range(10):
                xa = x.clone().requires_grad_(True)
                out = layer(xa)
                outputs[side] = (out, torch.autograd.grad(out, xa, grad)[0])
            times[side].append((time.perf_counter() - began) / 10 * 1e3)
    a, b = (statistics.median(t) for t in times.values())
    same = all(torch.equal(p, q) for p, q in zip(*outputs.values(), strict=True))
    print(f"  patch embedding {in_chans}->{dim}, patch {patch_size}, {batch} images of {size}x{size}, forward and "
          f"input gradient: oneDNN's convolution {a:.2f} ms, the matmul {b:.2f} ms: {a / b:.2f}x; "
          f"{'the same bits' if same else 'different bits'}", flush=True)


def _outputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             mode: AbstractContextManager[None]) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits and the cross-entropy's input gradient of ``model`` in ``mode`` (an attack mode)."""
    with mode:
        xa = x.clone().requires_grad_(True)
        logits = ChannelsLastInputs(model)(xa)
        return logits.detach(), torch.autograd.grad(F.cross_entropy(logits, y, reduction="none").sum(), xa)[0]


def published_bits(batches: tuple[int, ...], threads: tuple[int, ...]) -> None:
    """Every published robustness checkpoint in attack mode, with its patch embedding swapped and without, on its
    test set's first points and on them moved to a random corner of the Linf ball of 8/255 (as an attack's iterates
    are), in batches of each size (attacks run on shrinking subsets) at each thread count: whether the logits and the
    input gradients are the same bits. What it cannot cover: other inputs, sizes, thread counts and machines."""
    splits: dict[str, ImageSplit] = {}  # each test set read once
    for ckpt in sorted((REPO / "leaderboards" / "checkpoints").glob("*/*.safetensors")):
        model, meta = load_model(ckpt)
        train = meta["extra"]["train"]
        if TaskKind(train["task"]) is TaskKind.SHUFFLE:  # not attacked
            continue
        if train["dataset"] not in splits:
            splits[train["dataset"]] = load_split(train["dataset"], False, None)
        split = splits[train["dataset"]]
        with attack_mode(model):
            swapped = sum(isinstance(m, PatchEmbedMatmul) for m in model.modules())
        gen = torch.Generator().manual_seed(0)
        differ, compared = [], 0
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            for batch in batches:
                clean, y = to_unit(split.images[:batch]), split.labels[:batch]
                corner = (clean + 8 / 255 * torch.randn(clean.shape, generator=gen).sign()).clamp(0, 1)
                for kind, x in (("clean", clean), ("perturbed", corner)):
                    without = _outputs(model, x, y, _without_stem(attack_mode(model)))
                    compared += 1
                    if not all(map(torch.equal, without, _outputs(model, x, y, attack_mode(model)))):
                        differ.append(f"{kind} batch {batch} at {n_threads} thread(s)")
        print(f"  {ckpt.stem}: {swapped} layer(s) swapped; logits and input gradients "
              + (f"differ at {', '.join(differ)}" if differ else f"the same bits in all {compared} comparisons"),
              flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=PUBLISHED, help="checkpoints (.safetensors) or model names")
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--published-bits", action="store_true", help="only the bit-for-bit check of the published models")
    args = p.parse_args()
    if args.published_bits:
        print(header(f"1 and {os.cpu_count()} threads", torch.__version__))
        print(f"  batches of {', '.join(map(str, BIT_BATCHES))} points, clean and perturbed")
        published_bits(BIT_BATCHES, (1, os.cpu_count() or 1))
        return
    torch.set_num_threads(1)
    print(header("1 thread", torch.__version__))
    for name in args.models:
        if name.endswith(".safetensors"):
            model, _ = load_model(REPO / name)
        else:
            model = create_model(name, in_chans=1, num_classes=10, mixing="full")
        measure(Path(name).stem, model, args.batch, args.rounds, args.steps)
    gelu_kernels((64, 64, 28, 28), args.rounds)  # the medium unshuffler's activations at batch 64
    # the published ConvMixers' stems: small on fashion-mnist and cifar10-jpeg, medium, paper-slice
    for in_chans, size, patch_size, dim in [(1, 28, 4, 32), (3, 32, 4, 32), (1, 28, 2, 64), (1, 28, 2, 256)]:
        patch_embed_kernels(args.batch, in_chans, size, patch_size, dim, args.rounds)
    # other shapes: 1x1 convolutions (the small and medium ConvMixers' pointwise ones: not swapped), a 3->64 stem, and
    # a ViT-B/16's patch embedding on 16 images of 224x224
    for in_chans, size, patch_size, dim in [(32, 7, 1, 32), (64, 14, 1, 64), (3, 32, 2, 64)]:
        patch_embed_kernels(args.batch, in_chans, size, patch_size, dim, args.rounds)
    patch_embed_kernels(16, 3, 224, 16, 768, args.rounds)


if __name__ == "__main__":
    main()
