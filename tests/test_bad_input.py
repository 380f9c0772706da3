"""Bad input and faults through the real CLI, one row per case.

Every case runs in a fresh folder (the working directory) that its ``setup`` fills, and must end with
an exit code != 0, one line on stderr that names the problem (``expect`` is a substring of it), no
traceback, and nothing written or overwritten: the folder's files (names, bytes, permissions) are the
same before and after. A case whose command legitimately keeps something (e.g. the last good resume
state of a run that diverged) says so with ``writes=True`` and checks it in ``after``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from typer.testing import CliRunner

import randmix_bench
from _tiny_classifier import train_tiny_checkpoint
from randmix_bench.checkpoint import load_model, save_checkpoint
from randmix_bench.cli import app

Setup = Callable[[Path, "Fixtures"], None]


@dataclass(frozen=True)
class Fixtures:
    """Files shared by every case (built once per module): copy what a case needs into its folder."""

    checkpoint: Path  # a trained randmix_convmixer_tiny (3 channels, 10 classes) for the synthetic dataset


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]  # randmix's arguments; may use {tmp} for the case's folder
    expect: str  # a substring of the one-line error
    setup: Setup | None = None
    writes: bool = False  # the command may leave files (then ``after`` checks them)
    after: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


def copy_checkpoint(name: str = "run/checkpoint.safetensors") -> Setup:
    """Setup: the shared tiny checkpoint at ``name`` inside the case's folder."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fx.checkpoint, tmp / name)

    return setup


# --------------------------------------------------------------------------------- security (paths, code)

SECURITY_CASES: list[Case] = []

# ------------------------------------------------------------------------------------------------- eval

CHEAP_EVAL = ["--version", "custom", "--attacks", "apgd-ce", "--n-iter", "5", "--n-examples", "16", "--batch-size", "4",
              "--device", "cpu", "--out", "x.json"]


def killed_eval(tamper: Callable[[Path, dict[str, Any]], None]) -> Setup:
    """Setup: ``eval run ... CHEAP_EVAL`` killed after one batch, then ``tamper(folder, state)``; the
    state is written back as it is left (no new checksum: a tamper that re-signs does so itself)."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        from test_eval import InterruptAfter

        from randmix_bench.robustness import evaluate

        copy_checkpoint()(tmp, fx)
        with pytest.raises(KeyboardInterrupt):
            evaluate(tmp / "run", "synthetic", attack="autoattack", version="custom", attacks="apgd-ce", n_iter=5,
                     n_examples=16, batch_size=4, device="cpu", out=tmp / "x.json", progress=InterruptAfter(1))
        state = json.loads((tmp / "x.eval-state").read_text())
        tamper(tmp, state)
        (tmp / "x.eval-state").write_text(json.dumps(state))

    return setup


def edit_a_batch(tmp: Path, state: dict[str, Any]) -> None:
    state["stages"]["eps=8/255"]["apgd-ce"]["done"]["0"] = []  # "nothing broken": a higher robust accuracy


def resave_checkpoint(tmp: Path, state: dict[str, Any]) -> None:
    model, meta = load_model(tmp / "run")  # the same weights, another file (another sha256)
    save_checkpoint(tmp / "run" / "checkpoint.safetensors", model, meta["model"], meta["model_kwargs"], {"other": True})


def point_past_the_data(tmp: Path, state: dict[str, Any]) -> None:
    from randmix_bench.robustness import record_checksum

    state["clean"].append(16)  # point 16 of 0..15, re-signed as a forger would
    state["checksum"] = record_checksum(state)


LOCK_HOLDERS: list[subprocess.Popen] = []


def hold_lock(name: str) -> Setup:
    """Setup: a child process holds ``files.exclusive`` on ``name`` (as a running eval does) until its
    stdin closes; killed after the case by :func:`release_lock_holders`."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        copy_checkpoint()(tmp, fx)
        code = ("import sys\nfrom randmix_bench.files import exclusive\nwith exclusive(sys.argv[1], 'x'):\n"
                "    print('held', flush=True)\n    sys.stdin.read()")
        env = dict(os.environ, PYTHONPATH=str(Path(randmix_bench.__file__).parents[1]))
        proc = subprocess.Popen([sys.executable, "-c", code, name], cwd=tmp, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        LOCK_HOLDERS.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"

    return setup


@pytest.fixture(autouse=True)
def release_lock_holders() -> Iterator[None]:
    yield
    while LOCK_HOLDERS:
        proc = LOCK_HOLDERS.pop()
        proc.kill()
        proc.communicate()


EVAL_CASES: list[Case] = [
    Case("eval-unknown-attack", ["eval", "run", "-d", "synthetic", "--attack", "fgsm", "--device", "cpu"],
         "unknown attack 'fgsm'", setup=copy_checkpoint()),
    Case("eval-state-edited-by-hand", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL],
         "x.eval-state was edited or damaged (its checksum does not match its content); delete it",
         setup=killed_eval(edit_a_batch)),
    Case("eval-state-of-another-checkpoint", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL],
         "x.eval-state holds a partial evaluation of another checkpoint", setup=killed_eval(resave_checkpoint)),
    Case("eval-state-past-the-data", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL],
         "its clean predictions name points outside the 16 evaluated; delete it to start over, or pass --force",
         setup=killed_eval(point_past_the_data)),
    Case("eval-3-channel-model-on-fashion-mnist", ["eval", "run", "-d", "fashion-mnist", *CHEAP_EVAL],
         "takes 3-channel images but fashion-mnist has 1-channel images", setup=copy_checkpoint()),
    Case("eval-unknown-attack-in-spaced-list", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--attacks", "apgd-ce, nope"],
         "(unknown: nope)", setup=copy_checkpoint()),
    Case("eval-device-meta", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--device", "meta"],
         "device meta cannot run attacks", setup=copy_checkpoint()),
    Case("eval-result-locked-by-another-process", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL],
         "another randmix process is writing the result x.json", setup=hold_lock("x.json")),
    Case("eval-zero-examples", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--n-examples", "0"],
         "n_examples must be >= 1, got 0", setup=copy_checkpoint()),
]

# ---------------------------------------------------------------------------------- leaderboard, verify

LEADERBOARD_CASES: list[Case] = []

# ------------------------------------------------------------------------------ train, shuffle, quickstart

TRAIN_CASES: list[Case] = [
    Case("train-unknown-recipe", ["train", "-r", "no-such-recipe", "-o", "{tmp}/out"], "unknown recipe"),
]

CASES = SECURITY_CASES + EVAL_CASES + LEADERBOARD_CASES + TRAIN_CASES


# ------------------------------------------------------------------------------------------------ runner


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    root = tmp_path_factory.mktemp("bad-input-fixtures")
    return Fixtures(checkpoint=train_tiny_checkpoint(root / "checkpoint.safetensors"))


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``root``: content hash (folders: "dir") and permission bits."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        kind = "dir" if path.is_dir() and not path.is_symlink() else hashlib.sha256(
            path.read_bytes() if path.is_file() else str(path.readlink()).encode()).hexdigest()
        out[rel] = (kind, path.lstat().st_mode & 0o7777)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(case: Case, fixtures: Fixtures, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RANDMIX_OFFLINE", "1")
    monkeypatch.setenv("RANDMIX_CACHE", str(tmp_path / ".cache"))
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    if case.setup is not None:
        case.setup(tmp_path, fixtures)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in case.args], terminal_width=400)
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), f"not a clean exit: {result.exception!r}\n{result.output}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and case.expect in lines[0], lines[0]
    if case.writes:
        assert case.after is not None, "a case that writes must check what it wrote"
        case.after(tmp_path)
    else:
        after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(".cache")}
        assert after == {k: v for k, v in before.items() if not k.startswith(".cache")}
