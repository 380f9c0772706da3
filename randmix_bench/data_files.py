"""The raw files datasets come in, decoded to uint8 arrays: IDX files (the MNIST family), image files, and
``<split>/<class>/<image>`` folders or tar archives (with CIFAR-10's class order and cifar10-jpeg's test order).

Every reader bounds what it reads before reading it and fails in one line naming the file; which dataset lives in
which files is :mod:`randmix_bench.data`'s business.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import tarfile
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from randmix_bench.errors import MissingError, RandmixError
from randmix_bench.files import check_regular, read_regular

__all__ = ["read_idx", "arrays_sha256", "decode_image", "read_image_folder", "cifar10_jpeg_test_order",
           "CIFAR10_CLASSES"]

CIFAR10_JPEG_TEST_ORDER_SEED = 0


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


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """A hash of named arrays (names, dtypes, shapes, bytes): equal content gives an equal hash, whatever
    the zip timestamps or compression of the .npz that held them."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}:".encode())
        h.update(a.tobytes())
    return h.hexdigest()


MAX_IMAGE_PIXELS = 1 << 20
"""The most pixels one dataset image may declare (1024 x 1024): the models here take 28-32 px images. The size is
read from the header before anything is decoded, so a small file that declares 30000 x 30000 pixels (a
decompression bomb) costs nothing."""


def decode_image(blob: bytes, where: str = "<bytes>", size: int | None = None) -> np.ndarray:
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


Decode = Callable[[str, str, bytes], np.ndarray]
"""(class, file name, bytes) -> the image, as :func:`decode_image` gives it."""
Images = list[tuple[str, str, np.ndarray]]
"""(class, file name, image) of a split."""


def _folder_images(source: Path, split: str, decode: Decode) -> Images:
    """The images of ``source/<split>/<class>/*``, each decoded as it is read; an entry that resolves outside
    ``source`` (a symlink pointing elsewhere) is refused rather than read."""
    root = source.resolve()
    images = []
    for p in (source / split).glob("*/*"):
        if not p.resolve().is_relative_to(root):
            raise RandmixError(f"{p} links outside the dataset folder {source} (to {p.resolve()}); copy the file in "
                               "instead of linking it")
        if p.is_file():
            images.append((p.parent.name, p.name, decode(p.parent.name, p.name,
                                                         read_regular(p, "image", MAX_IMAGE_BYTES))))
    _check_no_empty_class(source, split, {c.name for c in (source / split).iterdir() if c.is_dir()}, images)
    return images


MAX_IMAGE_BYTES = 16 << 20  # one image file: far above any 32 px PNG/JPEG


def _check_no_empty_class(source: Path, split: str, classes: set[str], images: Images) -> None:
    """Classes are numbered by their folders' sorted names: an empty folder would silently shift every label
    after it, so it is refused, named."""
    empty = sorted(classes - {c for c, _, _ in images})
    if empty:
        raise RandmixError(f"{source}: class folder {split}/{empty[0]}/ holds no image"
                           + (f" (nor {len(empty) - 1} more)" if len(empty) > 1 else "")
                           + "; add its images or remove the folder (labels are numbered by folder)")


def _archive_images(source: Path, split: str, decode: Decode) -> Images:
    """The images of ``<split>/<class>/*`` in a tar, read in one streaming pass and each decoded as it is read (a
    small archive of large members that are no images, a gzip bomb, fails at its first one instead of filling
    memory); member names that are absolute or climb with ``..`` and links (symbolic or hard) are refused, and a
    damaged archive is one error."""
    images = []
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
                    blob = tar.extractfile(m).read()  # type: ignore[union-attr]
                    images.append((parts[1], parts[2], decode(parts[1], parts[2], blob)))
            while stream.read(1 << 20):  # to the end, so that a missing tail (and gzip's checksum) is noticed
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise RandmixError(f"{source} is a corrupt or truncated archive ({type(e).__name__}: {e}); download or "
                           "build it again") from None
    _check_no_empty_class(source, split, folders, images)
    return images


def read_image_folder(
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
    if progress:
        progress(f"decoding the {split} images of {source}")

    def decode(c: str, n: str, blob: bytes) -> np.ndarray:
        return decode_image(blob, f"{source}: {split}/{c}/{n}", image_size)

    found = _folder_images(source, split, decode) if source.is_dir() else _archive_images(source, split, decode)
    if not found:
        raise MissingError(f"{source} has no {split}/<class>/<image> files")
    found.sort(key=lambda t: (t[0], t[1]))
    classes = sorted({c for c, _, _ in found})
    if set(classes) == set(CIFAR10_CLASSES):
        classes = list(CIFAR10_CLASSES)
    index = {c: i for i, c in enumerate(classes)}
    decoded = [image for _, _, image in found]
    shapes = {d.shape for d in decoded}
    if len(shapes) > 1:
        sizes = ", ".join(map(str, sorted(shapes)[:3]))
        raise RandmixError(f"{source}: {split} images differ in size ({sizes}); resize them to one size")
    images = np.stack(decoded)
    labels = np.array([index[c] for c, _, _ in found], dtype=np.int64)
    if interleave_test and not train:
        order = cifar10_jpeg_test_order([f"{c}/{n}" for c, n, _ in found])
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
