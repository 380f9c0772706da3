"""Stock RobustBench evaluation vs ``randmix eval``'s harness: same model, same points, wall time of each.

(a) ``robustbench.eval.benchmark`` with its defaults (AutoAttack standard, its default batch size),
    running on PyPI's AutoAttack through :func:`randmix_bench.robustbench_interop.install_autoattack_shim`;
(b) :func:`randmix_bench.robustness.robust_accuracy`, the loop behind ``randmix eval`` (large batches, data on
    the device, input-only gradients).

Both use AutoAttack seed ``--seed``. AutoAttack draws each batch's random starts from that seed, so at
different batch sizes the two runs start from different points and their robust accuracies agree up to
that randomness (a few points in 10,000); at equal batch sizes they are identical
(tests/test_robustbench_interop.py). Prints a Markdown row for benchmarks/RESULTS.md.

    python benchmarks/eval_speed.py --checkpoint runs/cm256-chans --dataset cifar10-jpeg --device cuda
    python benchmarks/eval_speed.py --model randmix_convmixer_tiny --dataset synthetic --n-examples 8 --device cpu
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable
from typing import TypeVar

import torch

from randmix_bench.checkpoint import load_model
from randmix_bench.data import load_split
from randmix_bench.device import resolve_device
from randmix_bench.models import create_model
from randmix_bench.provenance import device_name
from randmix_bench.robustbench_interop import install_autoattack_shim, local_test_set
from randmix_bench.robustness import EvalOptions, robust_accuracy
from randmix_bench.tasks import ClassificationTask
from randmix_bench.tensors import to_unit
from randmix_bench.threat import ThreatModel
from randmix_bench.vocab import Mixing, Norm

T = TypeVar("T")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="run folder or .safetensors checkpoint")
    source.add_argument("--model", help="registered model name, randomly initialized (timing only)")
    p.add_argument("--mixing", default="chans", help="mixing variant for --model")
    p.add_argument("--dataset", default="cifar10-jpeg")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--n-examples", type=int, default=EvalOptions.n_examples)
    p.add_argument("--norm", default=EvalOptions.threat.norm.value, choices=Norm.values())
    p.add_argument("--eps", default=None, help="default: RobustBench's for the norm (8/255 Linf, 0.5 L2)")
    p.add_argument("--batch-size", type=int, default=EvalOptions.batch_size, help="our harness's batch size")
    p.add_argument("--stock-batch-size", type=int, default=None,
                   help="robustbench's (default: benchmark()'s own default)")
    p.add_argument("--seed", type=int, default=EvalOptions.seed)
    p.add_argument("--device", default=EvalOptions.device)
    return p.parse_args()


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(result, wall seconds), with the device drained before the clock stops."""
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    threat = ThreatModel.parse(args.norm, args.eps)
    options = EvalOptions(threat=threat, n_examples=args.n_examples, batch_size=args.batch_size, seed=args.seed,
                          device=args.device, data_dir=args.data_dir)  # AutoAttack standard
    device = resolve_device(options.device)
    test = load_split(args.dataset, train=False, data_dir=args.data_dir)
    points = test.first(args.n_examples)
    if args.checkpoint:
        model, meta = load_model(args.checkpoint)
        label = meta["model"]
    else:
        model = create_model(args.model, mixing=Mixing.parse(args.mixing),
                             **ClassificationTask().model_kwargs(test.info))
        label = f"{args.model} (untrained)"
    model = model.to(device).eval()
    with torch.no_grad():  # warm up kernels and allocator, so neither side pays for it
        model(to_unit(points.images[: args.batch_size].to(device)))

    install_autoattack_shim(seed=args.seed)
    from robustbench.eval import benchmark

    stock_bs = args.stock_batch_size or inspect.signature(benchmark).parameters["batch_size"].default
    rb_dataset = "cifar100" if test.info.num_classes == 100 else "cifar10"  # robustbench's loader we hand our points to
    with local_test_set(points, rb_dataset):
        (stock_clean, stock_robust), stock_s = timed(lambda: benchmark(
            model, n_examples=args.n_examples, dataset=rb_dataset, threat_model=args.norm, eps=threat.eps.value,
            batch_size=stock_bs, device=device))
    config = options.attack_config()
    ours, ours_s = timed(lambda: robust_accuracy(model, points.images, points.labels, config, device=device))

    n = args.n_examples
    print(f"\nmodel {label}, {args.dataset} first {n} points, AutoAttack standard {threat}, "
          f"{device_name(device)}")
    print(f"stock robustbench.benchmark (batch {stock_bs}): {stock_s:9.1f} s  clean {stock_clean:.2%}  "
          f"robust {stock_robust:.2%}")
    print(f"randmix harness (batch {args.batch_size}):      {ours_s:9.1f} s  clean {ours.clean_acc:.2%}  "
          f"robust {ours.robust_acc:.2%}")
    print(f"speed-up {stock_s / ours_s:.2f}x; robust accuracy differs by {abs(ours.robust_acc - stock_robust) * n:.0f} "
          f"of {n} points")
    print("where our time went: " + ", ".join(f"{a} {s:.1f} s" for a, s in ours.seconds.items())
          + "; per-attack robust acc: " + ", ".join(f"{a} {v:.2%}" for a, v in ours.per_attack.items()))
    if ours.flags:
        print("AutoAttack flags: " + "; ".join(ours.flags))
    print("\n| device | model | points | stock (s) | ours (s) | speed-up | stock robust % | ours robust % |")
    print(f"| {device_name(device)} | {label} | {n} | {stock_s:.1f} | {ours_s:.1f} | {stock_s / ours_s:.2f}x "
          f"| {100 * stock_robust:.2f} | {100 * ours.robust_acc:.2f} |")


if __name__ == "__main__":
    main()
