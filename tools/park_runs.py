#!/usr/bin/env python3
"""Park a long study's resume state in git, so that a fresh checkout can carry it on.

``randmix reproduce`` resumes a killed run from its folder under ``runs/``, which git ignores. A sitting may end
with the checkout itself gone, and ``runs/`` with it: a study that spans sittings then starts over (on 2026-12-06
the 20-epoch unshufflers lost 13 epochs of 3 runs, about 8 hours of both cores). So, at the end of a sitting,
with the study stopped, in the checkout of ``main``::

    python tools/park_runs.py park ../run/runs/medium      # -> parked/medium/, then commit parked/

copies each unfinished run's ``run.json`` and ``resume.pt`` (checked loadable, under the run's lock) into
``parked/<tier>/`` with a manifest of their hashes, and drops the parked copy of a run that has finished. At the
start of the next sitting, in a fresh checkout::

    python tools/park_runs.py unpark ../run/runs/medium    # names the revision to check out if ../run is not at it

copies them back (a hand-edited or truncated copy is refused; a run folder that is already as far is left alone).
Every run resumes at the code revision it started at, so ``../run`` must be a worktree at that revision.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from randmix_bench.errors import RandmixError
from randmix_bench.files import BusyError, exclusive, sha256, write_json
from randmix_bench.run_folder import RESUME_NAME, RUN_NAME, load_resume_state

PARKED = Path(__file__).resolve().parents[1] / "parked"
MANIFEST = "PARKED.json"
FILES = (RUN_NAME, RESUME_NAME)
PARK_KEYS = {"epochs_done", "git_revision", *FILES}


def _record(folder: Path) -> dict[str, Any]:
    try:
        record = json.loads((folder / RUN_NAME).read_text())
    except (OSError, ValueError) as e:
        raise RandmixError(f"{folder / RUN_NAME} is not a readable run record ({e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("provenance"), dict):
        raise RandmixError(f"{folder / RUN_NAME} is not a run record written by randmix train")
    return record


def _epochs(folder: Path) -> int:
    """Epochs a run folder holds: its resume state's (``run.json`` may lag one behind), else its record's."""
    if (folder / RESUME_NAME).is_file():
        return len(load_resume_state(folder / RESUME_NAME)["history"])  # a truncated or foreign file is refused
    return int(_record(folder)["epochs_done"])


def _run_folders(runs: Path) -> list[Path]:
    if runs.is_symlink() or not runs.is_dir():
        raise RandmixError(f"{runs} is not a folder of runs (e.g. ../run/runs/medium)")
    folders = sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    links = [p.name for p in folders if p.is_symlink() or any((p / f).is_symlink() for f in FILES)]
    if links:
        raise RandmixError(f"refusing symlinked run folders or files in {runs}: {', '.join(links)}")
    return folders


def _copy(source: Path, target: Path) -> None:
    """Each file copied beside its target, then renamed over it: a kill leaves the old or the new, never half."""
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(source / name, target / f".{name}.tmp")
        (target / f".{name}.tmp").replace(target / name)


def _manifest(parked: Path, missing_ok: bool) -> dict[str, dict[str, Any]]:
    path = parked / MANIFEST
    if missing_ok and not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RandmixError(f"{path} is not a readable manifest ({type(e).__name__}); nothing was copied") from None
    if not (isinstance(manifest, dict) and all(isinstance(v, dict) and PARK_KEYS <= v.keys()
                                               for v in manifest.values())):
        raise RandmixError(f"{path} is not a manifest written by park; nothing was copied")
    return manifest


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    try:
        with exclusive(folder, f"the run {folder}"):
            yield
    except BusyError:
        raise RandmixError(f"{folder} is training (its lock is held): stop the study at an epoch's end first") from None


def park(runs: Path, parked: Path) -> int:
    """Copy every unfinished run of ``runs`` into ``parked``; drop the parked copy of a run that has finished."""
    manifest = _manifest(parked, missing_ok=True)
    for folder in _run_folders(runs):
        with _locked(folder):
            record = _record(folder)
            if (folder / RESUME_NAME).is_file():
                epochs = _epochs(folder)
                _copy(folder, parked / folder.name)
                manifest[folder.name] = {"epochs_done": epochs, "git_revision": record["provenance"]["git_revision"],
                                         **{name: sha256(folder / name) for name in FILES}}
                print(f"parked {folder.name}: {epochs} epochs")
            elif record.get("status") == "finished" and folder.name in manifest:
                shutil.rmtree(parked / folder.name)
                del manifest[folder.name]
                print(f"dropped {folder.name}: finished (its results belong in leaderboards/)")
    if manifest or (parked / MANIFEST).exists():
        write_json(parked / MANIFEST, manifest)
    if not manifest:
        print(f"nothing in progress under {runs}")
    return 0


def _revision(folder: Path) -> str | None:
    """The commit of the checkout ``folder`` is (or would be) in."""
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def unpark(runs: Path, parked: Path) -> int:
    """Copy the parked runs that started at ``runs``' checkout's revision back into ``runs``."""
    manifest = _manifest(parked, missing_ok=False)
    head = _revision(runs.absolute())
    here = {name: entry for name, entry in sorted(manifest.items()) if entry["git_revision"] == head}
    elsewhere = sorted({entry["git_revision"][:7] for entry in manifest.values()} - {str(head)[:7]})
    if not here:
        start = " or ".join(elsewhere) or "no revision"
        raise RandmixError(f"the parked runs started at {start}, but {runs} is in a checkout at {head}: "
                           f"`git worktree add ../run {elsewhere[0] if elsewhere else ''}` and unpark into "
                           f"../run/runs/{parked.name}")
    if runs.exists():
        _run_folders(runs)  # refuses symlinks before anything is written
    for name, entry in here.items():  # every copy checked before any is written
        changed = [f for f in FILES if not (parked / name / f).is_file() or sha256(parked / name / f) != entry[f]]
        if changed:
            raise RandmixError(f"{parked / name}: {', '.join(changed)} differ from {MANIFEST} (edited or truncated); "
                               "nothing was copied")
    for name, entry in here.items():
        target = runs / name
        with _locked(target):
            if (target / RUN_NAME).is_file() and _epochs(target) >= entry["epochs_done"]:
                print(f"kept {name}: {target} already has {_epochs(target)} epochs")
                continue
            _copy(parked / name, target)
            print(f"unparked {name}: {entry['epochs_done']} epochs, code {entry['git_revision'][:7]}")
    for name, entry in manifest.items():
        if name not in here:
            print(f"left parked {name}: it started at {entry['git_revision'][:7]}, not at this checkout's revision")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("park", "unpark"))
    parser.add_argument("runs", type=Path, help="a tier's folder of runs, e.g. ../run/runs/medium")
    parser.add_argument("--parked", type=Path, default=None, help="default: parked/<the runs folder's name>")
    args = parser.parse_args(argv)
    parked = args.parked or PARKED / args.runs.resolve().name
    try:
        return park(args.runs, parked) if args.action == "park" else unpark(args.runs, parked)
    except RandmixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
