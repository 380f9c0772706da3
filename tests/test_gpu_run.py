"""``tools/gpu_run.py``, the one prepared GPU run: tested on the CPU so that the GPU run is a formality. The smoke
tier runs the whole path (install check, a shard under a budget, packing, the table) in about a minute."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "gpu_run.py"


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "run", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_dry_run_prints_the_shard_plan_and_writes_nothing(tmp_path: Path) -> None:
    done = run_script("--tier", "paper-slice", "--shard", "2/2", "--dry-run", "--root", str(tmp_path),
                      "--carry", str(tmp_path / "carry"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "paper-slice-convmixer256-fmnist-full-s1" in done.stdout and "convmixer256-fmnist-full-s0" not in done.stdout
    assert not (tmp_path / "leaderboards").exists() and not (tmp_path / "runs").exists()
    assert not (tmp_path / "out").exists()
    one_seed = run_script("--tier", "medium", "--only", "medium-unshuffle64-fmnist-long-*", "--shard", "2/3",
                          "--dry-run", "--root", str(tmp_path), "--carry", str(tmp_path / "carry"), "--out",
                          str(tmp_path / "out"), cwd=tmp_path)
    assert one_seed.returncode == 0, one_seed.stderr
    assert "medium-unshuffle64-fmnist-long-chans-s1" in one_seed.stdout and "convmixer64" not in one_seed.stdout
    assert "-s0" not in one_seed.stdout and "-s2" not in one_seed.stdout


@pytest.mark.slow
def test_a_smoke_shard_runs_packs_its_results_and_prints_a_table(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_script("--tier", "smoke", "--shard", "1/1", "--device", "cpu", "--root", str(tmp_path),
                      "--carry", str(tmp_path / "carry"), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()
    assert last[-1].startswith("shard 1/1 of smoke: exit 0") and "results-1of1.tar.gz" in last[-1]
    assert any(line.startswith("smoke-tiny-synthetic-chans-s0-linf") for line in last)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["log-1of1.txt", "results-1of1.tar.gz"]
    with tarfile.open(out / "results-1of1.tar.gz") as tar:
        names = tar.getnames()
    assert "leaderboards/synthetic/Linf/smoke-tiny-synthetic-full-s0-linf.json" in names
    assert "leaderboards/checkpoints/smoke/smoke-tiny-synthetic-chans-s0.safetensors" in names
    assert "runs/smoke/smoke-tiny-synthetic-full-s0/run.json" in names


def test_the_senders_revision_wins_over_a_copys_own_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU machine's copy of the tree held a stale ``.git`` (an old commit, dirty): the revision recorded in
    results must be the one the sender carried, not what that ``.git`` says."""
    from randmix_bench.provenance import git_revision

    monkeypatch.delenv("RANDMIX_GIT_REVISION", raising=False)
    here = git_revision()  # this checkout's own
    monkeypatch.setenv("RANDMIX_GIT_REVISION", "0123abc")
    assert git_revision() == "0123abc" != here
