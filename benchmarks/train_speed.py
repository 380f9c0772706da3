"""Training throughput: randmix's trainer against a plain reference loop, same model, recipe and steps.

(a) randmix: the trainer's own pieces (DeviceLoader, make_optimizer, train_step): data and augmentation
    on the device, channels_last, bf16 autocast + fused optimizer on CUDA, optional torch.compile.
(b) reference: the loop as usually written (cf. locuslab/convmixer-cifar10): a torchvision-style dataset
    returning PIL images, per-sample CPU transforms (RandomCrop, RandomHorizontalFlip, RandAugment,
    ToTensor), a DataLoader with worker processes, fp32 (or ``--reference-amp``: bf16 autocast on CUDA),
    a ``loss.item()`` per step.

Both run ``--warmup`` untimed steps (compilation, cuDNN autotuning, worker start-up) and then ``--steps``
timed ones. Examples:

    python benchmarks/train_speed.py --device cpu --model randmix_convmixer_tiny --steps 20 --batch-size 128
    python benchmarks/train_speed.py --device cuda --dataset cifar10-jpeg --mixing full chans --compile
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

from randmix_bench.data import ImageSplit, load_split
from randmix_bench.loader import Augment, DeviceLoader
from randmix_bench.provenance import device_name, versions
from randmix_bench.recipes import TrainConfig, get_recipe
from randmix_bench.tasks import ClassificationSettings, task_for
from randmix_bench.train import make_optimizer, train_step
from randmix_bench.vocab import Mixing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(steps: Iterator[Callable[[], Any]], warmup: int, timed_steps: int, device: torch.device) -> float:
    """Run ``warmup`` then ``timed_steps`` steps from ``steps``; seconds taken by the timed ones."""
    for _ in range(warmup):
        next(steps)()
    sync(device)
    start = time.perf_counter()
    for _ in range(timed_steps):
        next(steps)()
    sync(device)
    return time.perf_counter() - start


def model_on(device: torch.device, cfg: TrainConfig, split: ImageSplit, channels_last: bool) -> torch.nn.Module:
    """The trainer's initial model for ``cfg`` (the same weights both loops start from), on ``device``."""
    model, _ = cfg.build_model(task_for(cfg), split.info)
    return model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format).train()


def randmix_steps(cfg: TrainConfig, split: ImageSplit, device: torch.device) -> Iterator[Callable[[], Any]]:
    """The trainer's step, endlessly, at a fixed lr (the schedule costs nothing)."""
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    model = model_on(device, cfg, split, channels_last=True)
    net = torch.compile(model) if cfg.compile else model
    optimizer = make_optimizer(model, cfg, fused=cuda)
    params = [p for p in model.parameters() if p.requires_grad]
    augment = Augment(cfg.crop_padding, cfg.flip, cfg.randaugment_n, cfg.randaugment_m)
    loader = DeviceLoader(split.images, split.labels, cfg.batch_size, augment, cfg.seed, device,
                          channels_last=True, compile=cfg.compile)
    task = task_for(cfg)
    epoch = 0
    while True:
        for images, labels in loader.epoch(epoch):
            yield partial(train_step, net, task, optimizer, params, images, labels, cfg.lr, cfg.grad_clip, cuda)
        epoch += 1


class PILDataset(torch.utils.data.Dataset):
    """What torchvision's CIFAR10 does per item: a PIL image through the transform, and the label."""

    def __init__(self, split: ImageSplit, transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.images = split.images.permute(0, 2, 3, 1).numpy()  # HWC uint8, as torchvision keeps them
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.images[i]
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        return self.transform(pil), self.labels[i]


def reference_steps(
    cfg: TrainConfig, split: ImageSplit, device: torch.device, workers: int, amp: bool
) -> Iterator[Callable[[], Any]]:
    cuda = device.type == "cuda"
    transforms: list[Any] = []
    if cfg.crop_padding:
        transforms.append(T.RandomCrop(split.images.shape[-1], padding=cfg.crop_padding))
    if cfg.flip:
        transforms.append(T.RandomHorizontalFlip())
    if cfg.randaugment_n:
        transforms.append(T.RandAugment(cfg.randaugment_n, cfg.randaugment_m))
    transforms.append(T.ToTensor())
    loader = torch.utils.data.DataLoader(
        PILDataset(split, T.Compose(transforms)), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
        num_workers=workers, pin_memory=cuda, persistent_workers=workers > 0,
    )
    model = model_on(device, cfg, split, channels_last=False)
    optimizer = make_optimizer(model, cfg, fused=False)  # the recipe's optimizer, default (unfused) kernels
    smoothing = cfg.settings_of(ClassificationSettings).label_smoothing

    def step(images: torch.Tensor, labels: torch.Tensor) -> float:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and cuda):
            loss = F.cross_entropy(model(images), labels, label_smoothing=smoothing)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        return loss.item()

    while True:
        for images, labels in loader:
            yield partial(step, images, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="convmixer-cifar10")
    parser.add_argument("--model", default=None, help="default: the recipe's")
    parser.add_argument("--mixing", nargs="+", default=["full", "chans"])
    parser.add_argument("--dataset", default="synthetic",
                        help="synthetic (CIFAR-10 shaped), cifar10-jpeg, cifar10, ...")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile randmix's model and augmentation")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="reference DataLoader workers")
    parser.add_argument("--reference-amp", action="store_true", help="bf16 autocast in the reference loop (CUDA)")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()

    device = torch.device(args.device)
    split = load_split(args.dataset, True, args.data_dir)
    print(f"device: {device_name(device)} | {', '.join(f'{k} {v}' for k, v in versions().items())}")
    print(f"recipe {args.recipe}, dataset {args.dataset}, {args.steps} timed steps after {args.warmup} warm-up steps")
    print(f"{'mixing':<14}{'loop':<34}{'images/s':>12}{'ratio':>9}")
    for mixing in args.mixing:
        cfg = get_recipe(args.recipe).override(model=args.model, mixing=Mixing.parse(mixing), dataset=args.dataset,
                                               batch_size=args.batch_size, compile=args.compile)
        images = cfg.batch_size * args.steps
        ours = images / timed(randmix_steps(cfg, split, device), args.warmup, args.steps, device)
        print(f"{mixing:<14}{'randmix' + (' (compiled)' if args.compile else ''):<34}{ours:>12,.0f}{'':>9}", flush=True)
        if args.skip_reference:
            continue
        label = f"reference ({args.workers} workers, {'bf16' if args.reference_amp else 'fp32'})"
        steps = reference_steps(cfg, split, device, args.workers, args.reference_amp)
        ref = images / timed(steps, args.warmup, args.steps, device)
        print(f"{mixing:<14}{label:<34}{ref:>12,.0f}{ours / ref:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
