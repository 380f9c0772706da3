"""Builds ``fashion-mnist-mini``, the Fashion-MNIST subset that ships inside the package, from the originals.

The bundle lets ``randmix quickstart`` run on real images on a machine with neither Debian's
``dataset-fashion-mnist`` nor internet; it is built by this code, never by hand. The subset is 1,000
training and 200 test images per class. Within each class and split it takes the images whose original
index sorts first by ``sha256(f"{seed}:{split}:{index}")`` (a seeded choice that depends on no library's
RNG), kept in the originals' order, so the test subset keeps Fashion-MNIST's class interleaving and its
first n points are mixed. The original indices are stored beside the images. Rebuild it with::

    python -m randmix_bench.fmnist_mini [FOLDER WITH THE FOUR IDX .gz FILES]

Fashion-MNIST is MIT-licensed, Copyright (c) 2017 Zalando SE (``bundled/LICENSE-fashion-mnist.txt``).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from randmix_bench.data import FASHION_MNIST_DEBIAN_DIR, FASHION_MNIST_MINI, IDX_FILES
from randmix_bench.data_files import arrays_sha256, read_idx
from randmix_bench.files import atomic_path

__all__ = ["PER_CLASS", "SEED", "select", "subset", "build"]

PER_CLASS = {"train": 1000, "test": 200}
SEED = 0
NUM_CLASSES = 10


def select(labels: np.ndarray, per_class: int, split: str, seed: int = SEED) -> np.ndarray:
    """Original indices of the subset, ascending: per class, the ``per_class`` indices that sort first by
    ``sha256(f"{seed}:{split}:{index}")``."""
    digests = np.array([hashlib.sha256(f"{seed}:{split}:{i}".encode()).hexdigest() for i in range(len(labels))])
    chosen = []
    for c in range(NUM_CLASSES):
        members = np.flatnonzero(labels == c)
        chosen.append(members[np.argsort(digests[members], kind="stable")[:per_class]])
    return np.sort(np.concatenate(chosen))


def subset(source: Path = FASHION_MNIST_DEBIAN_DIR) -> dict[str, np.ndarray]:
    """The bundle's arrays from the original IDX files in ``source``: ``<split>_images`` uint8 [N, 28, 28],
    ``<split>_labels`` uint8 [N] and ``<split>_indices`` int32 [N] (positions in the original split)."""
    arrays: dict[str, np.ndarray] = {}
    for train, (image_file, label_file) in IDX_FILES.items():
        split = "train" if train else "test"
        labels = read_idx(source / label_file)
        idx = select(labels, PER_CLASS[split], split)
        arrays |= {f"{split}_images": read_idx(source / image_file)[idx], f"{split}_labels": labels[idx],
                   f"{split}_indices": idx.astype(np.int32)}
    return arrays


def build(source: Path = FASHION_MNIST_DEBIAN_DIR, out: Path = FASHION_MNIST_MINI) -> str:
    """Write the bundle (a compressed .npz) to ``out`` atomically; returns its content hash, the value
    :data:`randmix_bench.data.FASHION_MNIST_MINI_SHA256` must hold."""
    arrays = subset(source)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    return arrays_sha256(arrays)


def main(argv: list[str] | None = None) -> None:
    """``python -m randmix_bench.fmnist_mini --out FILE [SOURCE]``: ``--out`` is required, so the bundle that
    ships with the package is replaced only when it is named."""
    parser = argparse.ArgumentParser(prog="python -m randmix_bench.fmnist_mini", description="Build the "
                                     "fashion-mnist-mini bundle from the four Fashion-MNIST IDX .gz files and print "
                                     "its content sha256 (the value randmix_bench.data pins).")
    parser.add_argument("source", nargs="?", type=Path, default=FASHION_MNIST_DEBIAN_DIR,
                        help=f"folder of the IDX .gz files (default {FASHION_MNIST_DEBIAN_DIR})")
    parser.add_argument("--out", type=Path, required=True,
                        help=f"the .npz to write; the bundled one is {FASHION_MNIST_MINI}")
    args = parser.parse_args(argv)
    missing = [f for pair in IDX_FILES.values() for f in pair if not (args.source / f).is_file()]
    if missing:
        parser.error(f"{args.source} has no {missing[0]}; pass the folder of the four Fashion-MNIST IDX .gz files")
    digest = build(args.source, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes); content sha256 {digest}")


if __name__ == "__main__":
    main()
