"""``tools/park_runs.py``: a long study's resume state parked in git survives a fresh checkout, exactly; a
running, edited, foreign or misplaced state is refused in one line with nothing written."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from randmix_bench.checkpoint import CHECKPOINT_NAME
from randmix_bench.files import exclusive, sha256
from randmix_bench.recipes import get_recipe
from randmix_bench.run_folder import RESUME_NAME, RUN_NAME, load_resume_state

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "park_runs.py"
_spec = importlib.util.spec_from_file_location("park_runs", SCRIPT)
assert _spec and _spec.loader
park_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(park_runs)


def _git_checkout(root: Path) -> str:
    """A checkout with one commit (the revision parked runs must resume at); its sha."""
    root.mkdir()
    for args in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
                                  "-m", "x"]):
        subprocess.run(["git", "-C", str(root), *args], check=True)
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(scope="module")
def parked_study(tmp_path_factory: pytest.TempPathFactory, train_killed_after: Callable[..., None]
                 ) -> tuple[Path, Path, str]:
    """A run killed after epoch 1 of 2 at a checkout's revision, parked: (runs folder, parked folder, sha)."""
    tmp = tmp_path_factory.mktemp("park")
    sha = _git_checkout(tmp / "checkout")
    runs = tmp / "checkout" / "runs" / "medium"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RANDMIX_GIT_REVISION", sha)
        train_killed_after(1, get_recipe("quick"), runs / "long-full-s0", patch)
    parked = tmp / "parked" / "medium"
    assert park_runs.main(["park", str(runs), "--parked", str(parked)]) == 0
    return runs, parked, sha


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_park_then_unpark_into_a_fresh_checkout_is_exact(parked_study: tuple[Path, Path, str],
                                                         tmp_path: Path) -> None:
    runs, parked, sha = parked_study
    manifest = json.loads((parked / "PARKED.json").read_text())
    assert manifest["long-full-s0"]["epochs_done"] == 1 and manifest["long-full-s0"]["git_revision"] == sha
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", str(runs.parents[1]), str(fresh)], check=True)
    assert park_runs.main(["unpark", str(fresh / "runs" / "medium"), "--parked", str(parked)]) == 0
    assert _files(fresh / "runs" / "medium") == _files(runs)
    assert load_resume_state(fresh / "runs" / "medium" / "long-full-s0" / RESUME_NAME)["history"][-1]["epoch"] == 1
    # a second unpark keeps the run folder that is already as far
    before = _files(fresh / "runs" / "medium")
    assert park_runs.main(["unpark", str(fresh / "runs" / "medium"), "--parked", str(parked)]) == 0
    assert _files(fresh / "runs" / "medium") == before


@pytest.mark.slow
def test_bad_states_are_refused_in_one_line_with_nothing_written(parked_study: tuple[Path, Path, str],
                                                                 tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    runs, parked, sha = parked_study
    parked_before = _files(parked)

    def refused(action: str, target: Path, message: str, source: Path = parked) -> None:
        before = _files(target) if target.is_dir() else {}
        assert park_runs.main([action, str(target), "--parked", str(source)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert (_files(target) if target.is_dir() else {}) == before

    with exclusive(runs / "long-full-s0", "a test"):  # a study still training
        refused("park", runs, "is in use by another process (its lock is held)")
    refused("unpark", tmp_path / "elsewhere", f"last ran at {sha[:7]}")  # not a checkout at the runs' revision
    edited = tmp_path / "edited"
    subprocess.run(["cp", "-r", str(parked), str(edited)], check=True)
    with open(edited / "long-full-s0" / RESUME_NAME, "r+b") as f:
        f.truncate(100)
    fresh = runs.parents[1] / "runs-fresh"
    refused("unpark", fresh, "differ from PARKED.json (edited or truncated)", source=edited)
    manifest = json.loads((parked / "PARKED.json").read_text())
    for bad in ({"../../escaped": manifest["long-full-s0"]}, {"long-full-s0": {**manifest["long-full-s0"],
                                                                               "epochs_done": "1"}}):
        (edited / "PARKED.json").write_text(json.dumps(bad))
        refused("unpark", fresh, "is not a manifest written by park_runs.py", source=edited)
    (edited / "PARKED.json").write_text("{not json")
    refused("unpark", fresh, "manifest", source=edited)
    assert not fresh.exists() and not (runs.parents[2] / "escaped").exists()
    two = tmp_path / "two"  # a park that cannot take every run copies none
    subprocess.run(["cp", "-r", str(runs), str(two)], check=True)
    subprocess.run(["cp", "-r", str(two / "long-full-s0"), str(two / "long-full-s1")], check=True)
    with exclusive(two / "long-full-s1", "a test"):
        refused("park", two, "is in use by another process", source=tmp_path / "new" / "parked-two")
    assert not (tmp_path / "new").exists()  # not even the folder the lock needed
    os.mkfifo(two / "long-full-s1" / "fifo")
    (two / "long-full-s1" / RUN_NAME).unlink()
    (two / "long-full-s1" / "fifo").rename(two / "long-full-s1" / RUN_NAME)
    refused("park", two, "is not a regular file", source=tmp_path / "parked-two")  # no wait on a FIFO
    link = tmp_path / "link"
    link.symlink_to(runs, target_is_directory=True)
    refused("park", link, "refusing symlinks")
    assert _files(parked) == parked_before


@pytest.mark.slow
def test_a_finished_run_stays_parked_until_this_checkout_commits_it(parked_study: tuple[Path, Path, str],
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A run that finished before its study's results were merged is parked as its run.json and checkpoint (its
    resume state gone), and a fresh checkout gets both back, the checkpoint also where `randmix reproduce` finds
    the run done (never over another file, never through a symlink); the parked copy is dropped only once the
    parking's own checkout has committed those bytes (a file only in its working tree dies with it)."""
    runs, parked, _ = parked_study
    finished = tmp_path / "checkout" / "runs" / "medium"
    subprocess.run(["cp", "-r", str(runs.parents[1]), str(tmp_path / "checkout")], check=True)
    run = finished / "long-full-s0"
    (run / CHECKPOINT_NAME).write_bytes(b"weights of a finished run")
    record = json.loads((run / RUN_NAME).read_text())
    record.update(status="finished", epochs_done=2, checkpoint={"path": CHECKPOINT_NAME,
                                                                 "sha256": sha256(run / CHECKPOINT_NAME)})
    (run / RUN_NAME).write_text(json.dumps(record))
    (run / RESUME_NAME).unlink()
    repo = tmp_path / "repo"  # the checkout that holds the parking: repo/parked/medium
    _git_checkout(repo)
    copy = repo / "parked" / "medium"
    copy.parent.mkdir()
    subprocess.run(["cp", "-r", str(parked), str(copy)], check=True)  # the run parked at epoch 1 before
    assert park_runs.main(["park", str(finished), "--parked", str(copy)]) == 0
    entry = json.loads((copy / "PARKED.json").read_text())["long-full-s0"]
    assert entry["finished"] is True and entry["epochs_done"] == 2 and entry[CHECKPOINT_NAME] == sha256(
        run / CHECKPOINT_NAME)
    assert sorted(p.name for p in (copy / "long-full-s0").iterdir()) == sorted([CHECKPOINT_NAME, RUN_NAME])

    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "checkout"), str(fresh)], check=True)
    (fresh / "runs" / "medium").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(runs / "long-full-s0"), str(fresh / "runs" / "medium")], check=True)  # epoch 1
    assert park_runs.main(["unpark", str(fresh / "runs" / "medium"), "--parked", str(copy)]) == 0
    assert _files(fresh / "runs" / "medium") == _files(finished)  # the epoch-1 resume state is gone
    home = fresh / "leaderboards" / "checkpoints" / "medium" / "long-full-s0.safetensors"
    assert home.read_bytes() == b"weights of a finished run"
    home.write_bytes(b"another run's weights")  # never overwritten
    capsys.readouterr()
    assert park_runs.main(["unpark", str(fresh / "runs" / "medium"), "--parked", str(copy)]) == 1
    assert "holds another checkpoint" in capsys.readouterr().err and home.read_bytes() == b"another run's weights"
    home.unlink()
    home.parent.rmdir()
    (tmp_path / "elsewhere").mkdir()
    home.parent.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert park_runs.main(["unpark", str(fresh / "runs" / "medium"), "--parked", str(copy)]) == 1
    assert "refusing symlinks" in capsys.readouterr().err and not any((tmp_path / "elsewhere").iterdir())

    (run / CHECKPOINT_NAME).write_bytes(b"edited")  # no longer what its run.json records: refused
    assert park_runs.main(["park", str(finished), "--parked", str(copy)]) == 1
    assert "is not the checkpoint its run.json records" in capsys.readouterr().err
    (run / CHECKPOINT_NAME).write_bytes(b"weights of a finished run")
    published = repo / "leaderboards" / "checkpoints" / "medium" / "long-full-s0.safetensors"
    published.parent.mkdir(parents=True)
    published.write_bytes(b"weights of a finished run")
    assert park_runs.main(["park", str(finished), "--parked", str(copy)]) == 0  # not committed: kept
    assert "long-full-s0" in json.loads((copy / "PARKED.json").read_text())
    for args in (["add", "leaderboards"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "publish"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    capsys.readouterr()
    assert park_runs.main(["park", str(finished), "--parked", str(copy)]) == 0
    assert not copy.exists() and "every run parked there is published" in capsys.readouterr().out


def test_the_script_runs_from_a_shell() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "park" in done.stdout and "unpark" in done.stdout


def test_a_checkpoint_is_never_published_over_a_file_that_appeared(tmp_path: Path) -> None:
    """The last step of unpark links, not renames: a file that appeared at the target after the checks stays."""
    (tmp_path / "source").write_bytes(b"parked weights")
    home = tmp_path / "checkpoints" / "medium" / "run.safetensors"
    park_runs._publish(tmp_path / "source", home)
    assert home.read_bytes() == b"parked weights"
    home.write_bytes(b"someone else's weights")
    with pytest.raises(park_runs.RandmixError, match="appeared while unparking"):
        park_runs._publish(tmp_path / "source", home)
    assert home.read_bytes() == b"someone else's weights" and sorted(p.name for p in home.parent.iterdir()) == [
        home.name]  # no temporary file left beside it
