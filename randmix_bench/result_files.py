"""Result files on disk: read and validated, written atomically (never over an input), their checkpoint found.

The schemas are :mod:`randmix_bench.results`'; a file that fails them raises :class:`ResultError`, one line
naming the file and the field.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from randmix_bench.errors import ExistsError, RandmixError
from randmix_bench.files import MAX_JSON_BYTES, parse_json, read_regular, write_json
from randmix_bench.results import CheckpointRef, Result, RobustnessResult, ShuffleResult
from randmix_bench.vocab import TaskKind

__all__ = ["ResultError", "check_entry_name", "checkpoint_ref", "checkpoint_field", "resolve_checkpoint", "resolve_ref",
           "read_result", "check_replaceable", "write_result"]

ENTRY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


class ResultError(RandmixError):
    """A result file that is not valid JSON or does not match its schema; names file and field."""


class ForeignFileError(ResultError):
    """A ``ResultError`` for a file that is not even a damaged result: unreadable, not JSON, or a JSON without the
    ``randmix`` block or the shuffle track (a project's package.json under a mistyped folder)."""


def check_entry_name(name: str, what: str = "--name") -> str:
    """``name`` if it is safe as a result file name (``<name>.json`` inside the output folder), else a
    one-line error: no '/', '\\', '..', leading '.', NUL or other path syntax."""
    if not ENTRY_NAME.fullmatch(name) or ".." in name:
        raise RandmixError(f"{what} {name!r} is not a valid entry name (it becomes a file name); use letters, digits, "
                           "'-', '_', '.' (not first, no '..'), at most 100 characters")
    return name


def checkpoint_ref(checkpoint: Path, result_path: Path, sha256: str, weights_sha256: str) -> CheckpointRef:
    """The reference a result at ``result_path`` records for ``checkpoint`` (both real paths are used)."""
    ckpt, folder = checkpoint.resolve(), result_path.parent.resolve()
    for base in (folder, *folder.parents[:-1]):  # never the filesystem root: that would be an absolute path
        if ckpt.is_relative_to(base):
            return CheckpointRef(path=ckpt.relative_to(base).as_posix(), sha256=sha256, weights_sha256=weights_sha256)
    raise ResultError(f"checkpoint {checkpoint} shares no folder with the result {result_path}; write the result "
                      "(--out) into a folder that also holds the checkpoint, e.g. beside it")


def checkpoint_field(result: Result) -> tuple[CheckpointRef, str]:
    """A result's checkpoint reference and the field that holds it (for messages)."""
    if isinstance(result, ShuffleResult):
        return result.checkpoint, "checkpoint.path"
    return result.randmix.checkpoint, "randmix.checkpoint.path"


def resolve_checkpoint(result: Result, result_path: str | Path, root: str | Path) -> Path:
    """The real path of ``result``'s checkpoint, which must lie inside ``root`` (the leaderboards folder):
    see :func:`resolve_ref`."""
    return resolve_ref(*checkpoint_field(result), result_path, root)


def resolve_ref(ref: CheckpointRef, field: str, result_path: str | Path, root: str | Path) -> Path:
    """The real path of a checkpoint a result refers to in ``field``, which must lie inside ``root``.

    The reference is tried against the result's folder, then each folder above it up to ``root``, and
    the first file found wins; symlinks are followed and must not leave ``root``. Raises
    :class:`ResultError` naming the file and the field."""
    result_path, root = Path(result_path), Path(root).resolve()
    folder = result_path.parent.resolve()
    if not folder.is_relative_to(root):
        raise ResultError(f"{result_path}: the result is outside its leaderboards folder {root}; move it under {root}")
    bases = [folder, *(p for p in folder.parents if p.is_relative_to(root))]
    found = next((base / ref.path for base in bases if (base / ref.path).is_file()), None)
    if found is None:
        raise ResultError(f"{result_path}: field {field!r}: {ref.path!r} does not exist (looked beside the file and in "
                          f"its parent folders up to {root}); copy the checkpoint there")
    real = found.resolve()
    if not real.is_relative_to(root):
        raise ResultError(f"{result_path}: field {field!r}: {ref.path!r} leads outside the leaderboards folder {root} "
                          f"(to {real}); copy the checkpoint itself beside the result")
    return real


def read_result(path: str | Path) -> Result:
    """Read and validate one result file; a shuffle result says ``"track": "shuffle"``."""
    path = Path(path)
    try:
        raw = parse_json(read_regular(path, "result file", MAX_JSON_BYTES), str(path))
    except RandmixError as e:
        raise ForeignFileError(str(e)) from None
    shuffle = isinstance(raw, dict) and raw.get("track") == TaskKind.SHUFFLE
    cls = ShuffleResult if shuffle else RobustnessResult
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        # a whole-model check has no location, or a parent's, and names its fields itself
        named = not field or message.startswith("field '")
        ours = shuffle or (isinstance(raw, dict) and "randmix" in raw)
        raise (ResultError if ours else ForeignFileError)(
            f"{path}: " + ("" if named else f"field {field!r}: ") + f"{message}{more}") from None


def check_replaceable(path: str | Path, kind: type[RobustnessResult] | type[ShuffleResult]) -> None:
    """Fail in one line unless ``path`` is free or holds an earlier result of ``kind``: ``--force`` replaces an
    earlier output, never an input (a checkpoint), a folder or a file of the user's."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    try:
        earlier = read_result(path)
    except ResultError as e:
        raise ExistsError(f"{path} exists and is not a result randmix wrote ({e}); --force only replaces an earlier "
                          "result: choose another --out") from None
    if not isinstance(earlier, kind):
        raise ExistsError(f"{path} holds another kind of result; --force only replaces one of the same kind: choose "
                          "another --out")


def write_result(path: str | Path, result: Result, force: bool = False) -> Path:
    """Write a validated result atomically; refuse to overwrite an existing one unless ``force``, and even then
    anything but an earlier result of the same kind (:func:`check_replaceable`)."""
    path = Path(path)
    if path.exists() and not force:
        raise ExistsError(f"{path} already exists; pass --force to overwrite it")
    check_replaceable(path, type(result))
    write_json(path, result.model_dump(mode="json", exclude_none=False))
    return path
