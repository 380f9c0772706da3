"""The GPU path's batched RandAugment (``randmix_bench.loader.rand_augment``) against torchvision's RandAugment ops
on uint8 tensors, op by op on real images: the share of pixels that differ and the largest difference, for the
sign that matches best (README, Training: why torchvision's ``RandAugment`` does not replace it).

    python benchmarks/randaugment_vs_torchvision.py fashion-mnist-mini cifar10-jpeg --data-dir DATA
"""

from __future__ import annotations

import argparse

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import autoaugment as tv

from randmix_bench.data import load_split
from randmix_bench.loader import RA_OPS, rand_augment

TORCHVISION_NAMES = dict(zip(RA_OPS, ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",
                                      "Brightness", "Color", "Contrast", "Sharpness", "Posterize", "Solarize",
                                      "AutoContrast", "Equalize"), strict=True))


def compare(images: torch.Tensor, magnitude: int) -> dict[str, tuple[float, float]]:
    """Per op: (fraction of pixels that differ, largest difference in 1/255), the worse of torchvision's signs."""
    n, size = len(images), images.shape[-1]
    space = tv.RandAugment(2, magnitude)._augmentation_space(31, (size, size))
    rows = {}
    for i, name in enumerate(RA_OPS):
        magnitudes, signed = space[TORCHVISION_NAMES[name]]
        value = float(magnitudes[magnitude]) if magnitudes.ndim else 0.0
        worst = (0.0, 0.0)
        for sign in (1.0, -1.0) if signed else (1.0,):
            ref = torch.stack([tv._apply_op(img, TORCHVISION_NAMES[name], sign * value, InterpolationMode.NEAREST,
                                            None) for img in images]).float()
            ours = [(rand_augment(images.float() / 255, torch.full((1, n), i), torch.full((1, n), s), magnitude)
                     * 255).round() for s in (1.0, -1.0)]  # our sign convention may be the other one
            diff = min(((o - ref).abs() for o in ours), key=lambda d: d.sum())
            worst = max(worst, ((diff > 0).float().mean().item(), diff.max().item()))
        rows[name] = worst
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n", type=int, default=256, help="the first n test images")
    parser.add_argument("--magnitude", type=int, default=12, help="RandAugment's m (the convmixer-cifar10 recipe's)")
    args = parser.parse_args()
    for dataset in args.datasets:
        images = load_split(dataset, train=False, data_dir=args.data_dir).images[: args.n]
        print(f"{dataset}: first {len(images)} test images {tuple(images.shape[1:])}, magnitude {args.magnitude}")
        for name, (share, largest) in compare(images, args.magnitude).items():
            print(f"  {name:13s} pixels differing {100 * share:6.2f} %   max |diff| {largest:3.0f}/255")


if __name__ == "__main__":
    main()
