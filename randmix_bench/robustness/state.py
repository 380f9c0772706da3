"""The resume state of an evaluation: what it has finished, batch by batch, in a signed ``.eval-state`` file.

The file (format ``randmix-eval-state/3``, JSON, written atomically after every batch and removed once the
result is written) holds the settings it belongs to (the checkpoint's sha256 among them), the clean
predictions, per stage and attack the batch plan, the points each finished batch broke and the attack's
seconds so far, AutoAttack's flags so far, and a signature of all that (:func:`record_checksum`). A file
that fails any check is refused with a :class:`StateError`: replaying it would put numbers that no attack
produced into a result.

Why a keyed signature: a plain sha256 of the content can be recomputed by anyone who edits the file, so it
only catches damage. The signature is an HMAC-SHA256 under a random 256-bit key that randmix creates once per
user, readable by that user alone (``<cache>/eval-state.key``, mode 0600, see :func:`state_key`). A state file
edited by hand, or made by another user or machine, cannot carry a valid signature, so a resumed evaluation
only ever replays batches that this user's own randmix attacked. (The user could forge one with their own key;
then they could as well edit the result, which is what ``randmix verify`` re-checks from the checkpoint.)
The cheap part is also re-derived on every resume: the harness recomputes the clean predictions and refuses a
state whose recorded ones differ.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from randmix_bench.errors import RandmixError
from randmix_bench.files import atomic_path, read_json

__all__ = ["RECORD_FORMAT", "StateError", "AttackState", "EvalRecord", "record_checksum", "state_key"]

RECORD_FORMAT = "randmix-eval-state/3"
KEY_NAME = "eval-state.key"
KEY_BYTES = 32
_FIX = "delete it to start over, or pass --force to discard it"


class StateError(RandmixError):
    """A partial-evaluation file that must not be continued: damaged, edited, or from another run."""


def state_key(cache_dir: str | Path | None = None) -> bytes:
    """This user's signing key for state files: ``<cache_dir>/eval-state.key`` (default: the data cache,
    ``$RANDMIX_CACHE`` or ``~/.cache/randmix``), 32 random bytes created on first use with mode 0600. A key file
    that others may read or write, or of the wrong size, is refused: it would let them sign a state."""
    from randmix_bench.data import default_cache_dir

    path = Path(cache_dir or default_cache_dir()) / KEY_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
    info = path.lstat()
    if path.is_symlink() or info.st_mode & 0o077 or info.st_uid != os.getuid() or info.st_size != KEY_BYTES:
        raise StateError(f"{path} is not this user's private {KEY_BYTES}-byte key (a link, another owner, readable "
                         "by others or the wrong size); delete it and rerun (partial evaluations it signed restart)")
    return path.read_bytes()


def record_checksum(data: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 under ``key`` of a record's canonical JSON without its ``checksum`` field: what the file must
    carry (see the module's docstring for why it is keyed)."""
    body = {k: v for k, v in data.items() if k != "checksum"}
    return hmac.new(key, json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()


def _indices(value: Any, n: int) -> bool:
    return isinstance(value, list) and all(type(i) is int and 0 <= i < n for i in value)


def _record_problem(data: dict[str, Any], n: int, batch_size: int) -> str | None:
    """What is wrong with a record's content for ``n`` points in batches of ``batch_size``, if anything:
    every index must name one of the points and every finished batch one batch of its attack's plan."""
    if data.get("clean") is not None and not _indices(data["clean"], n):
        return f"its clean predictions name points outside the {n} evaluated"
    flags, stages = data.get("flags"), data.get("stages")
    if not (isinstance(flags, list) and all(isinstance(f, str) for f in flags) and isinstance(stages, dict)):
        return "its flags or stages are malformed"
    for stage, attacks in stages.items():
        for attack, entry in (attacks.items() if isinstance(attacks, dict) else [(None, None)]):
            where = f"stage {stage!r} attack {attack!r}"
            if not isinstance(entry, dict) or set(entry) != {"plan", "done", "seconds"}:
                return f"{where} is malformed"
            plan, done, seconds = entry["plan"], entry["done"], entry["seconds"]
            if not (plan is None and done == {} or _indices(plan, n)) or not isinstance(done, dict):
                return f"{where} plans points outside the {n} evaluated"
            starts = range(0, len(plan or []), batch_size)
            batches = {str(b): plan[first : first + batch_size] for b, first in enumerate(starts)}
            if any(key not in batches or not _indices(broken, n) or not set(broken) <= set(batches[key])
                   for key, broken in done.items()):
                return f"{where} records batches or points outside its plan of {len(plan or [])} points"
            if not isinstance(seconds, (int, float)) or seconds < 0:
                return f"{where} has a bad attack time"
    return None


@dataclass
class AttackState:
    """One attack of one stage: the points it attacks (fixed when it starts, so batches are too), the
    points each finished batch broke (by batch number, as a string: JSON keys), its seconds so far."""

    plan: list[int] | None = None
    done: dict[str, list[int]] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class EvalRecord:
    """The resume state of one evaluation, in memory and (unless ``path`` is None) on disk.

    :meth:`open` continues the file at ``path`` when there is one, :meth:`save` writes it after each batch,
    :meth:`discard` removes it once the result is written. ``path=None`` keeps the record in memory only
    (no resume). ``key`` signs the file (:func:`state_key`)."""

    fingerprint: dict[str, Any]  # the settings it belongs to, as after a round trip through JSON
    clean: list[int] | None = None  # indices of the correctly classified points
    stages: dict[str, dict[str, AttackState]] = field(default_factory=dict)  # stage -> attack -> its state
    flags: list[str] = field(default_factory=list)  # AutoAttack's warnings so far
    path: Path | None = field(default=None, compare=False)
    resumed: bool = field(default=False, compare=False)  # continues a file an earlier run left
    key: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def open(cls, path: Path | None, fingerprint: dict[str, Any]) -> EvalRecord:
        """The record at ``path`` if one is there (checked against ``fingerprint``), else a new one."""
        fingerprint = json.loads(json.dumps(fingerprint))  # the form it has after a round trip through the file
        key = state_key() if path is not None else b""
        if path is not None and (path.exists() or path.is_symlink()):
            record = cls.from_json(_read(path, fingerprint, key))
            record.path, record.resumed, record.key = path, True, key
            return record
        return cls(fingerprint, path=path, key=key)

    def to_json(self) -> dict[str, Any]:
        """The file's content, signed: format, fingerprint, clean, stages, flags, checksum."""
        data: dict[str, Any] = {
            "format": RECORD_FORMAT, "fingerprint": self.fingerprint, "clean": self.clean,
            "stages": {stage: {attack: asdict(state) for attack, state in attacks.items()}
                       for stage, attacks in self.stages.items()},
            "flags": self.flags,
        }
        data["checksum"] = record_checksum(data, self.key)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalRecord:
        """A record from a file's content that :func:`_read` has checked."""
        stages = {stage: {attack: AttackState(**state) for attack, state in attacks.items()}
                  for stage, attacks in data["stages"].items()}
        return cls(data["fingerprint"], clean=data.get("clean"), stages=stages, flags=data["flags"])

    def attack(self, stage: str, attack: str) -> AttackState:
        """The state of ``attack`` in ``stage``, created empty the first time."""
        return self.stages.setdefault(stage, {}).setdefault(attack, AttackState())

    def save(self) -> None:
        if self.path is not None:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")))

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _read(path: Path, fingerprint: dict[str, Any], key: bytes) -> dict[str, Any]:
    """A state file's content, once it has passed every check: format, signature, same checkpoint, same
    settings, indices within the evaluated points and their batch plans."""
    try:
        saved = read_json(path, "partial evaluation")
    except RandmixError as e:
        raise StateError(f"{path}: unreadable partial evaluation, not JSON ({e}); {_FIX}") from None
    if not isinstance(saved, dict) or saved.get("format") != RECORD_FORMAT:
        raise StateError(f"{path} is not a {RECORD_FORMAT} partial evaluation; {_FIX}")
    checksum = saved.get("checksum")
    if not isinstance(checksum, str) or not hmac.compare_digest(checksum, record_checksum(saved, key)):
        raise StateError(f"{path} was edited or damaged (its checksum does not match its content); {_FIX}")
    theirs = saved.get("fingerprint")
    theirs = theirs if isinstance(theirs, dict) else {}
    if theirs.get("checkpoint_sha256") != fingerprint["checkpoint_sha256"]:
        raise StateError(f"{path} holds a partial evaluation of another checkpoint (sha256 "
                         f"{str(theirs.get('checkpoint_sha256'))[:12]}…); {_FIX}")
    differ = sorted(k for k in fingerprint if theirs.get(k) != fingerprint[k])
    if differ:
        raise StateError(f"{path} holds a partial evaluation with other settings ({', '.join(differ)} differ); "
                         f"rerun its command to finish it, or {_FIX}")
    problem = _record_problem(saved, fingerprint["n_examples"], fingerprint["attack"]["batch_size"])
    if problem:
        raise StateError(f"{path} does not fit this evaluation: {problem}; {_FIX}")
    return saved
