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
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

from _tiny_classifier import train_tiny_checkpoint
from randmix_bench.cli import app
from randmix_bench.files import sha256
from test_claims import robust
from test_leaderboard import _edit

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

EVAL_CASES: list[Case] = [
    Case("eval-unknown-attack", ["eval", "run", "-d", "synthetic", "--attack", "fgsm", "--device", "cpu"],
         "unknown attack 'fgsm'", setup=copy_checkpoint()),
]

# ---------------------------------------------------------------------------------- leaderboard, verify

def result_file(change: dict | None = None, readme: str | None = None) -> Setup:
    """Setup: ``leaderboards/cifar10/Linf/entry.json``, a valid ranked result for the shared checkpoint
    beside it, with dotted fields changed; and a ``README.md`` when given."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        folder = tmp / "leaderboards" / "cifar10" / "Linf"
        folder.mkdir(parents=True)
        shutil.copy(fx.checkpoint, folder / "entry.safetensors")
        data = robust("chans", 0, 0.8, 0.3).model_dump(mode="json")
        data["randmix"]["checkpoint"] = {"path": "entry.safetensors", "sha256": sha256(folder / "entry.safetensors")}
        (folder / "entry.json").write_text(json.dumps(data))
        _edit(folder / "entry.json", change or {})
        if readme is not None:
            (tmp / "README.md").write_text(readme)

    return setup


LEADERBOARD = ["leaderboard", "--dir", "leaderboards", "--readme", "README.md"]
LEADERBOARD_CASES: list[Case] = [
    Case("leaderboard-autoattack-acc-not-robust-acc", LEADERBOARD, "field 'autoattack_acc': '35.00' is not randmix.robust_acc",
         setup=result_file({"autoattack_acc": "35.00"})),
    Case("leaderboard-nan-accuracy", LEADERBOARD, "entry.json: field 'randmix.robust_acc': Input should be a finite number",
         setup=result_file({"randmix.robust_acc": float("nan")})),
    Case("leaderboard-inf-percentage", LEADERBOARD, "field 'clean_acc': 'inf' is not a percentage in [0, 100]",
         setup=result_file({"clean_acc": "inf"})),
    Case("leaderboard-120-percent", LEADERBOARD, "field 'clean_acc': '120.00' is not a percentage in [0, 100]",
         setup=result_file({"clean_acc": "120.00", "randmix.clean_acc": 1.2})),
    Case("leaderboard-robust-above-clean", LEADERBOARD, "robust_acc 0.9 exceeds clean_acc 0.8",
         setup=result_file({"randmix.robust_acc": 0.9, "autoattack_acc": "90.00"})),
    Case("leaderboard-eps-not-positive", LEADERBOARD, "field 'randmix.eps_value'", setup=result_file({"randmix.eps_value": 0})),
    Case("leaderboard-readme-markers-reversed", LEADERBOARD, "README.md: damaged leaderboard markers",
         setup=result_file(readme="<!-- leaderboard:end -->\nold\n<!-- leaderboard:start -->\n")),
    Case("leaderboard-readme-marker-duplicated", LEADERBOARD, "README.md: damaged leaderboard markers (2",
         setup=result_file(readme="<!-- leaderboard:start -->\n<!-- leaderboard:end -->\n<!-- leaderboard:start -->\n")),
    Case("leaderboard-readme-end-marker-missing", LEADERBOARD, "README.md: damaged leaderboard markers (1",
         setup=result_file(readme="<!-- leaderboard:start -->\nthe rest of the README\n")),
    Case("leaderboard-missing-dir", ["leaderboard", "--dir", "{tmp}/nowhere"], "nowhere does not exist; pass --dir"),
]

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
