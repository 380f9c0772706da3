#!/usr/bin/env python3
"""Park a long study's resume state in git, so that a fresh checkout can carry it on.

``randmix reproduce`` resumes a killed run from its folder under ``runs/``, which git ignores. A sitting may end
with the checkout itself gone, and ``runs/`` with it: a study that spans sittings then starts over (on 2026-12-06
the 20-epoch unshufflers lost 13 epochs of 3 runs, about 8 hours of both cores). So, at the end of a sitting,
with the study stopped, in the checkout of ``main``::

    python tools/park_runs.py park ../run/runs/medium      # -> parked/medium/, then commit parked/

checks every unfinished run (its lock free, its ``run.json`` and ``resume.pt`` readable), then copies each
one's two files into ``parked/<tier>/<run>/`` and writes the manifest ``PARKED.json`` (epochs, hashes, the code
revision the run last ran at) last. A run that has finished is parked too, as its ``run.json`` and checkpoint:
until its study's results are merged, that checkpoint lives only in the ignored runs folder and the untracked
``leaderboards/checkpoints/<tier>/`` of the runs checkout, and losing it costs the whole training again. Its parked
copy is dropped once this checkout publishes that checkpoint (``leaderboards/checkpoints/<tier>/<run>.safetensors``,
the same bytes). A park cut short leaves ``runs/`` as it was: park again. At the start of the next sitting, in a
fresh checkout::

    python tools/park_runs.py unpark ../run/runs/medium

checks every parked copy against the manifest and every target folder, then copies them back (a run folder that
is already as far is left alone), a finished run's checkpoint also where ``randmix reproduce`` looks for it. Each
run must go on at the code it ran at, so the runs folder must be in a worktree at that revision: unpark names it
otherwise (``git worktree add ../run <revision>``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from randmix_bench.checkpoint import CHECKPOINT_NAME
from randmix_bench.errors import RandmixError
from randmix_bench.files import (
    BusyError,
    atomic_path,
    check_regular,
    exclusive,
    os_error_line,
    read_json,
    sha256,
    write_json,
)
from randmix_bench.jobs import Paths
from randmix_bench.result_files import check_entry_name
from randmix_bench.run_folder import RESUME_NAME, RUN_NAME, load_resume_state
from randmix_bench.vocab import Tier

PARKED = Path(__file__).resolve().parents[1] / "parked"
MANIFEST = "PARKED.json"
FILES = (RUN_NAME, RESUME_NAME)
"""What an unfinished run is parked as."""
FINISHED_FILES = (RUN_NAME, CHECKPOINT_NAME)
"""What a finished run is parked as (``"finished": true`` in its manifest entry)."""
_HEX40, _HEX64 = re.compile(r"[0-9a-f]{40}"), re.compile(r"[0-9a-f]{64}")


@contextmanager
def _locked(path: Path, what: str) -> Iterator[None]:
    """Hold ``path``'s lock (the folders it had to create go again if left empty: a refusal writes nothing, not
    even an empty ``parked/``), or fail in a line that says what holds it."""
    try:
        with exclusive(path, what):
            yield
    except BusyError:
        raise RandmixError(f"{what} is in use by another process (its lock is held): stop the study at an epoch's "
                           "end, or wait for the other park_runs.py") from None


def _no_links(*paths: Path) -> None:
    links = [str(p) for p in paths if p.is_symlink()]
    if links:
        raise RandmixError(f"refusing symlinks (a run's state is copied, never followed): {', '.join(links)}")


def _record(folder: Path) -> dict[str, Any]:
    record = read_json(folder / RUN_NAME, "run record")  # a FIFO, a huge or a broken file: one line
    provenance = record.get("provenance") if isinstance(record, dict) else None
    revision = provenance.get("git_revision") if isinstance(provenance, dict) else None
    if not isinstance(revision, str):
        raise RandmixError(f"{folder / RUN_NAME} is not a run record written by randmix train")
    return record


def _epochs(folder: Path) -> int:
    """Epochs the resume state of ``folder`` holds (``run.json`` may lag it by one after a kill)."""
    check_regular(folder / RESUME_NAME, "resume state")  # torch.load would wait forever on a FIFO
    try:
        return len(load_resume_state(folder / RESUME_NAME)["history"])
    except RandmixError as e:
        raise RandmixError(f"{folder / RESUME_NAME} is not a usable resume state ({e})") from None


def _copy(source: Path, target: Path, files: tuple[str, ...]) -> None:
    """Each file copied beside its target, then renamed over it: a kill leaves the old or the new, never half."""
    for name in files:
        with atomic_path(target / name) as tmp:
            shutil.copyfile(source / name, tmp)


def _files(entry: dict[str, Any]) -> tuple[str, ...]:
    """The files a manifest entry parks."""
    return FINISHED_FILES if entry.get("finished") is True else FILES


def _published(root: Path, runs: Path, name: str) -> Path:
    """Where ``randmix reproduce`` in the checkout ``root`` keeps the checkpoint of the finished run ``name`` of the
    tier whose runs folder is ``runs``."""
    if runs.name not in {t.value for t in Tier}:
        raise RandmixError(f"{runs} holds a finished run but is not a tier's runs folder (runs/<tier>), so where "
                           "randmix reproduce keeps its checkpoint is unknown")
    return Paths(root).checkpoint(Tier(runs.name), name)


def _committed(root: Path, path: Path, source: Path) -> bool:
    """Whether the commit checked out at ``root`` holds ``source``'s bytes at ``path``: a file only in the working
    tree is lost with the checkout, so it does not count as published."""
    def git(*args: str) -> str | None:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    held = git("rev-parse", "--verify", "--quiet", f"HEAD:{path.relative_to(root).as_posix()}")
    return held is not None and held == git("hash-object", str(source.absolute()))


def _publish(source: Path, home: Path) -> None:
    """``source`` copied to ``home``, never over a file that appeared there meanwhile."""
    try:
        with atomic_path(home, replace=False) as tmp:
            shutil.copyfile(source, tmp)
    except FileExistsError:
        raise RandmixError(f"{home} appeared while unparking; compare it with {source}") from None


def _check_finished(folder: Path, record: dict[str, Any]) -> None:
    """Refuse a finished run whose checkpoint is missing, or not the one its ``run.json`` records."""
    if not (folder / CHECKPOINT_NAME).exists():
        raise RandmixError(f"{folder} has finished but holds no {CHECKPOINT_NAME}: copy it back from the runs "
                           "checkout's leaderboards/checkpoints/, or move the run folder away")
    check_regular(folder / CHECKPOINT_NAME, "checkpoint")
    recorded = record.get("checkpoint")
    if not isinstance(recorded, dict) or recorded.get("sha256") != sha256(folder / CHECKPOINT_NAME):
        raise RandmixError(f"{folder / CHECKPOINT_NAME} is not the checkpoint its {RUN_NAME} records (edited?)")


def _manifest(parked: Path) -> dict[str, dict[str, Any]]:
    """The manifest, every field checked: its names become paths and its hashes are trusted."""
    if not (parked / MANIFEST).exists():
        return {}
    manifest = read_json(parked / MANIFEST, "manifest")
    foreign = f"{parked / MANIFEST} is not a manifest written by park_runs.py"
    for name in manifest if isinstance(manifest, dict) else ():
        check_entry_name(name, f"{foreign}: its run")
    ok = isinstance(manifest, dict) and all(
        isinstance(entry, dict) and type(entry.get("epochs_done")) is int and entry["epochs_done"] >= 1
        and _HEX40.fullmatch(str(entry.get("git_revision"))) and type(entry.get("finished", False)) is bool
        and all(_HEX64.fullmatch(str(entry.get(f))) for f in _files(entry))
        for entry in manifest.values())
    if not ok:
        raise RandmixError(f"{foreign} (edited by hand?)")
    return manifest


def _run_folders(runs: Path) -> list[Path]:
    _no_links(runs)
    if not runs.is_dir():
        raise RandmixError(f"{runs} is not a folder of runs (a tier's, e.g. ../run/runs/medium)")
    if (runs / RUN_NAME).exists():
        raise RandmixError(f"{runs} is one run's folder; pass its tier's folder ({runs.parent})")
    folders = sorted(p for p in runs.iterdir() if not p.name.startswith(".") and (p.is_dir() or p.is_symlink()))
    _no_links(*folders, *(p / f for p in folders for f in {*FILES, *FINISHED_FILES}))
    return folders


def park(runs: Path, parked: Path) -> None:
    """Park every run of ``runs`` into ``parked``: an unfinished one's resume state, a finished one's checkpoint
    until the checkout that holds ``parked`` (its grandparent) publishes it, when its parked copy is dropped (with
    the last one, the manifest and the emptied folder)."""
    _no_links(parked, parked.parent)
    root = parked.absolute().parents[1]  # the checkout that holds the parking: parked/<tier>
    with ExitStack() as held:
        held.enter_context(_locked(parked, f"the parking {parked}"))
        manifest = _manifest(parked)
        _no_links(*(parked / name for name in manifest))
        todo: dict[str, tuple[Path, int, str, tuple[str, ...]]] = {}
        published: list[str] = []
        for folder in _run_folders(runs):  # everything checked, every lock held, before the first copy
            held.enter_context(_locked(folder, f"the run {folder}"))
            record = _record(folder)
            if record.get("status") == "finished":
                _check_finished(folder, record)
                if _committed(root, _published(root, runs, folder.name), folder / CHECKPOINT_NAME):
                    published += [folder.name] if folder.name in manifest else []
                    continue
                epochs, files = record.get("epochs_done"), FINISHED_FILES
            elif (folder / RESUME_NAME).exists():
                epochs, files = _epochs(folder), FILES
            else:
                continue  # killed in its first epoch: nothing to carry on from
            check_entry_name(folder.name, f"{folder}: the run")
            revision = record["provenance"]["git_revision"]
            if not _HEX40.fullmatch(revision):
                raise RandmixError(f"{folder} last ran at {revision!r}, code that no checkout can return to "
                                   "(uncommitted changes?); resume it from a clean commit first")
            if type(epochs) is not int or epochs < 1:
                raise RandmixError(f"{folder / RUN_NAME} records no finished epoch (edited by hand?)")
            todo[folder.name] = (folder, epochs, revision, files)
        for name, (folder, epochs, revision, files) in todo.items():
            _copy(folder, parked / name, files)
            finished = {"finished": True} if files == FINISHED_FILES else {}
            manifest[name] = {"epochs_done": epochs, "git_revision": revision, **finished,
                              **{f: sha256(parked / name / f) for f in files}}
            print(f"parked {name}: {'finished, ' if finished else ''}{epochs} epochs, code {revision[:7]}")
        for name in published:
            del manifest[name]
            print(f"dropped {name}: {root} has its checkpoint committed")
        if manifest and (todo or published):
            write_json(parked / MANIFEST, manifest)
        elif published:  # the study is published: nothing is left to carry, not even a manifest
            (parked / MANIFEST).unlink()
        # only after the manifest: a kill before it leaves the files it still names
        for name in published:
            shutil.rmtree(parked / name, ignore_errors=True)
        for name, (_, _, _, files) in todo.items():  # a run parked unfinished before
            for stale in {*FILES, *FINISHED_FILES} - set(files):
                (parked / name / stale).unlink(missing_ok=True)
        if not todo:
            print(f"nothing to park under {runs}")
        if published and not manifest:
            with suppress(OSError):  # it holds something else: left alone
                parked.rmdir()
                print(f"removed {parked}: every run parked there is published")


def _revision(folder: Path) -> str | None:
    """The commit of the checkout ``folder`` is (or would be created) in."""
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def unpark(runs: Path, parked: Path) -> None:
    """Copy the parked runs that last ran at the revision of ``runs``' checkout back into ``runs``."""
    _no_links(parked)
    with ExitStack() as held:
        held.enter_context(_locked(parked, f"the parking {parked}"))
        manifest = _manifest(parked)
        if not manifest:
            raise RandmixError(f"nothing is parked in {parked}")
        head = _revision(runs.absolute())
        here = {name: entry for name, entry in sorted(manifest.items()) if entry["git_revision"] == head}
        if not here:
            revision = sorted({entry["git_revision"] for entry in manifest.values()})[0]
            raise RandmixError(f"the parked runs last ran at {revision[:7]}, but {runs} is in a checkout at "
                               f"{(head or 'none')[:7]}: `git worktree add <folder> {revision[:7]}`, then unpark "
                               f"into <folder>/runs/{parked.name}")
        folders = _run_folders(runs) if runs.exists() else []
        _no_links(*(parked / name for name in here), *(parked / name / f for name in here for f in _files(here[name])))
        todo, publish = [], []
        for name, entry in here.items():  # everything checked, every lock held, before the first copy
            files = _files(entry)
            changed = [f for f in files if not (parked / name / f).is_file() or sha256(parked / name / f) != entry[f]]
            if changed:
                raise RandmixError(f"{parked / name}: {', '.join(changed)} differ from {MANIFEST} (edited or "
                                   "truncated); nothing was copied")
            target = runs / name
            if target.exists() and not target.is_dir():
                raise RandmixError(f"{target} is a file, not a run folder; move it away")
            held.enter_context(_locked(target, f"the run {target}"))
            if entry.get("finished") is True:
                home = _published(runs.absolute().parents[1], runs, name)
                _no_links(home, *home.parents[:3])  # leaderboards/checkpoints/<tier>/: never followed elsewhere
                if home.exists() and (not home.is_file() or sha256(home) != entry[CHECKPOINT_NAME]):
                    raise RandmixError(f"{home} holds another checkpoint than the finished run {name}'s; move it "
                                       "away")
                publish += [] if home.exists() else [(name, home)]
            held_epochs = _epochs(target) if target in folders and (target / RESUME_NAME).exists() else 0
            if held_epochs >= entry["epochs_done"]:
                print(f"kept {name}: {target} already holds {held_epochs} epochs")
            elif target in folders and (target / RUN_NAME).exists() and _record(target).get("status") == "finished":
                print(f"kept {name}: {target} has finished")
            else:
                todo.append((name, entry))
        for name, entry in todo:
            _copy(parked / name, runs / name, _files(entry))
            finished = "finished, " if entry.get("finished") is True else ""
            if finished:  # the resume state of the same run killed earlier: superseded
                (runs / name / RESUME_NAME).unlink(missing_ok=True)
            print(f"unparked {name}: {finished}{entry['epochs_done']} epochs, code {entry['git_revision'][:7]}")
        for name, home in publish:  # where `randmix reproduce` finds the run done
            _publish(parked / name / CHECKPOINT_NAME, home)
            print(f"unparked {name}'s checkpoint into {home}")
        for name, entry in manifest.items():
            if name not in here:
                print(f"left parked {name}: it last ran at {entry['git_revision'][:7]}, not at {(head or '')[:7]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Park a long study's resume state in git, or carry it back.")
    parser.add_argument("action", choices=("park", "unpark"))
    parser.add_argument("runs", type=Path, help="a tier's folder of runs, e.g. ../run/runs/medium")
    parser.add_argument("--parked", type=Path, default=None, help="default: parked/<the runs folder's name>")
    args = parser.parse_args(argv)
    parked = args.parked or PARKED / args.runs.absolute().name
    try:
        (park if args.action == "park" else unpark)(args.runs, parked)
    except RandmixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {os_error_line(e) or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
