"""Atomic writes, content hashes and process locks: results and checkpoints are never left half-written,
and two processes never write the same run or result."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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

    The lock is ``flock`` on a hidden ``.<name>.lock`` beside ``path``: the kernel releases it when the
    process dies, so a killed run never leaves a stale lock behind. ``what`` names the thing in the
    error (e.g. ``"--out runs/a"``)."""
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BusyError(f"another randmix process is writing {what} (lock {lock}); wait for it to finish or "
                            "choose another output") from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break  # else the holder removed the file while we opened it: lock the new one
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # before unlocking, so a waiter that locked the old file retries
        os.close(fd)


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
