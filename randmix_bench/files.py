"""Atomic writes, content hashes and process locks: results and checkpoints are never left half-written,
and two processes never write the same run or result."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from randmix_bench.errors import ExistsError, RandmixError


def _read_umask() -> int:
    """The process umask, read once at import (``os.umask`` can only read it by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else delete it.

    ``mkstemp`` creates the file 0600; before the rename it gets the mode a plain ``open`` would give
    (0666 minus the umask), so results, checkpoints and run files are as readable as any other file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# an indented list of integers: "[" and a newline (never inside a JSON string, which holds no raw newline)
_INT_LIST = re.compile(r"\[\n\s*(-?\d+(?:,\n\s*-?\d+)*)\n\s*\]")


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically; a list of integers (per-point outcomes) stays on
    one line, so that a result with 10,000 outcomes remains a file a person can read."""
    text = json.dumps(obj, indent=2, sort_keys=True)
    text = _INT_LIST.sub(lambda m: "[" + ", ".join(m.group(1).replace(",", " ").split()) + "]", text)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def jsonable(obj: Any) -> Any:
    """``obj`` as JSON would give it back (tuples become lists), so what is saved and what is asked compare equal."""
    return json.loads(json.dumps(obj))


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class BusyError(RandmixError):
    """Another process holds the lock on what this one would write."""


@contextmanager
def exclusive(path: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a run folder or a result file) for the block, or fail at once.

    The lock is ``filelock``'s on a hidden ``.<name>.lock`` beside ``path`` (``flock`` on POSIX, ``msvcrt`` on
    Windows): the OS releases it when the process dies, so a killed run never leaves a stale lock behind. The
    file is removed before the lock is let go; filelock retries a file removed under it (``st_nlink == 0``).
    ``what`` names the thing in the error (e.g. ``"--out runs/a"``)."""
    path = Path(path)
    lock = FileLock(path.parent / f".{path.name}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise BusyError(f"another randmix process is writing {what} (lock {lock.lock_file}); wait for it to finish "
                        "or choose another output") from None
    try:
        yield
    finally:
        Path(lock.lock_file).unlink(missing_ok=True)
        lock.release()


def check_writable(path: str | Path, what: str) -> None:
    """Fail in one line, before any work, when ``path`` (a folder to create or fill) cannot be one: it is
    a file, it lies under a file, or its nearest existing folder is read-only. ``what`` names the option."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ExistsError(f"{what} {path} is a file, not a folder; choose a folder")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RandmixError(f"{what} {path} lies under the file {ancestor}; choose a folder path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RandmixError(f"{what} {path} cannot be written ({ancestor} is read-only); choose another folder")
