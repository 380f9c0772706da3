"""Atomic writes, content hashes and process locks: results and checkpoints are never left half-written,
and two processes never write the same run or result."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from itertools import takewhile
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from randmix_bench.errors import ExistsError, MissingError, RandmixError


def _read_umask() -> int:
    """The process umask, read once at import (``os.umask`` can only read it by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()


@contextmanager
def atomic_path(path: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path`` (``replace=False``: link it there,
    so a file already at ``path`` is never replaced: ``FileExistsError``), else delete it.

    ``mkstemp`` creates the file 0600; before the rename it gets the mode a plain ``open`` would give
    (0666 minus the umask), so results, checkpoints and run files are as readable as any other file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)
        (os.replace if replace else os.link)(tmp, path)
    except OSError as e:
        if e.filename is None:  # a failed write names no file: name the output, for the one-line message
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
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


MAX_JSON_BYTES = 64 << 20
"""The largest JSON file read (results, resume states, run records): a result with per-point outcomes on
10,000 points is ~100 KB, so this refuses /dev/zero and its kind long before memory runs out."""
MAX_JSON_DEPTH = 64
"""The deepest nesting a JSON file may have: ours are 5 deep; 100,000 would exhaust Python's stack."""


def read_regular(path: str | Path, what: str, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file (after symlinks) of at most ``limit`` bytes, else a one-line
    error: a FIFO would block forever and ``/dev/zero`` never ends, so neither is opened for reading.
    ``what`` names the file's role in the message."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait for a writer
    except FileNotFoundError:
        raise MissingError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise RandmixError(f"{what} {path} cannot be read ({e.strerror}); check its permissions") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # before fdopen, which refuses a folder with a bare IsADirectoryError
        os.close(fd)
        raise RandmixError(f"{what} {path} is not a regular file (a FIFO, device or folder); pass a file")
    with os.fdopen(fd, "rb") as f:
        if info.st_size > limit:
            raise RandmixError(f"{what} {path} is {info.st_size:,} bytes, more than the {limit:,} such a file can "
                               "hold; it is not one of ours")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise RandmixError(f"{what} {path} grew past {limit:,} bytes while being read; it is not one of ours")
    return data


def png_text(path: str | Path, key: str) -> str | None:
    """The text chunk ``key`` of the PNG at ``path`` (the marks randmix writes into its charts and grids), or None:
    no file, not a regular file, not a PNG, no such chunk. randmix writes its marks before the pixels, so only the
    header is read: a FIFO is never opened (it would block) and a user's huge image never decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                value = image.info.get(key)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    return value if isinstance(value, str) else None


def check_regular(path: str | Path, what: str) -> None:
    """Fail in one line unless ``path`` is a regular file (after symlinks): a FIFO would block a reader forever,
    a device such as ``/dev/zero`` never ends. ``stat`` opens nothing, so it cannot block."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise MissingError(f"{what} {path} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        raise RandmixError(f"{what} {path} is not a regular file (a FIFO, device or folder); pass a file")


def _depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text, counted without parsing (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped, in_string = (not escaped and ch == "\\"), in_string and (escaped or ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(data: bytes, where: str) -> Any:
    """``data`` (UTF-8 JSON, at most :data:`MAX_JSON_DEPTH` deep) parsed, or a one-line :class:`RandmixError`
    starting with ``where``: invalid UTF-8, bad syntax or absurd nesting are one line, never a traceback."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RandmixError(f"{where}: not readable JSON (not UTF-8 at byte {e.start})") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise RandmixError(f"{where}: not readable JSON (nested more than {MAX_JSON_DEPTH} levels deep)")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise RandmixError(f"{where}: not readable JSON ({e})") from None


def read_json(path: str | Path, what: str, limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON file read with :func:`read_regular` and :func:`parse_json`: every way it can be wrong is one line."""
    return parse_json(read_regular(path, what, limit), f"{what} {path}")


def check_output_file(path: str | Path, what: str) -> None:
    """Fail in one line, before any work, when ``path`` (a file to create or replace) cannot be one: it is a
    folder, or a symlink to nothing (writing through it would create a file elsewhere or fail half-way)."""
    path = Path(path)
    if path.is_dir():
        raise ExistsError(f"{what} {path} is a folder; pass a file path (e.g. {path / 'result.json'})")
    if path.is_symlink() and not path.exists():
        raise RandmixError(f"{what} {path} is a symlink to {os.readlink(path)}, which does not exist; remove the link "
                           "or choose another path")


ENVIRONMENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG,
                                errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EFBIG, errno.EEXIST, errno.ENOENT,
                                errno.EXDEV, errno.EIO, errno.EMLINK, errno.ENOTEMPTY, errno.EBUSY, errno.ETXTBSY})
"""OS errors that describe the machine (permissions, a full disk, a name too long, a read-only or virtual file
system), not a bug: :func:`os_error_line` reports them in one line."""

_OS_FIX = {errno.ENOSPC: "free some space or choose another folder", errno.EDQUOT: "free some space",
           errno.ENAMETOOLONG: "use a shorter name (at most 255 bytes per path component)",
           errno.EROFS: "choose a folder on a writable file system", errno.EACCES: "check its permissions",
           errno.EPERM: "check its permissions or choose another folder"}


def os_error_line(e: OSError) -> str | None:
    """The one line for an OS error that is the machine's, not a bug (None for any other): what failed, on
    which file, and the fix."""
    if e.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    fix = _OS_FIX.get(e.errno, "check the path")
    return f"{where + ': ' if where else ''}{e.strerror or e}; {fix} (nothing was half-written: outputs are atomic)"


class BusyError(RandmixError):
    """Another process holds the lock on what this one would write."""


@contextmanager
def exclusive(path: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a run folder or a result file) for the block, or fail at once.

    The lock is ``filelock``'s on a hidden ``.<name>.lock`` beside ``path`` (``flock`` on POSIX, ``msvcrt`` on
    Windows): the OS releases it when the process dies, so a killed run never leaves a stale lock behind. The
    file is removed before the lock is let go; filelock retries a file removed under it (``st_nlink == 0``).
    The folders made to hold the lock are removed again if the block leaves them empty: a refusal or a failure
    writes nothing, not even an empty ``--out-dir``. ``what`` names the thing in the error (e.g. ``"--out runs/a"``)."""
    path = Path(path)
    lock = FileLock(path.parent / f".{path.name}.lock")
    with folder_for(path.parent):
        try:
            lock.acquire(blocking=False)
        except Timeout:
            try:  # filelock reports a lock file it cannot create (a read-only or virtual folder) as held by another
                os.close(os.open(lock.lock_file, os.O_RDWR | os.O_CREAT, 0o644))
            except OSError as e:
                raise RandmixError(f"{what} cannot be written: its lock file {lock.lock_file} cannot be created "
                                   f"({e.strerror}); choose a folder on a writable file system") from None
            raise BusyError(f"another randmix process is writing {what} (lock {lock.lock_file}); wait for it to "
                            "finish or choose another output") from None
        try:
            yield
        finally:
            Path(lock.lock_file).unlink(missing_ok=True)
            lock.release()


@contextmanager
def folder_for(folder: Path) -> Iterator[None]:
    """``folder`` made (with its missing parents) for the block; those it made are removed again if the block
    leaves them empty, so a refusal or a failure writes nothing, not even an empty folder."""
    made = list(takewhile(lambda f: not f.exists(), (folder, *folder.parents)))  # innermost first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    finally:
        for f in made:
            with suppress(OSError):  # it holds what the block wrote (or another process's files): kept
                f.rmdir()


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
