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
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from _tiny_classifier import train_tiny_checkpoint
from randmix_bench.checkpoint import CHECKPOINT_NAME, FORMAT, METADATA_KEY, read_checkpoint
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

def forged_checkpoint(**changes: object) -> Setup:
    """Setup: ``run/checkpoint.safetensors`` holding the shared weights with its metadata record changed."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        state, meta = read_checkpoint(fx.checkpoint)
        record = {"format": FORMAT, **meta, **changes}
        (tmp / "run").mkdir()
        save_file(state, str(tmp / "run" / CHECKPOINT_NAME), metadata={METADATA_KEY: json.dumps(record)})

    return setup


def hostile_kwarg(key: str) -> Setup:
    """Setup: a checkpoint whose ``model_kwargs[key]`` names a pickle that would write ``pwned`` if loaded."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        (tmp / "payload.pth").write_bytes(b"c__builtin__\nopen\n(Vpwned\nVw\ntR.")  # open("pwned", "w")
        kwargs = dict(read_checkpoint(fx.checkpoint)[1]["model_kwargs"], **{key: str(tmp / "payload.pth")})
        forged_checkpoint(model_kwargs=kwargs)(tmp, fx)

    return setup


def image_folder(extra: Callable[[Path], None]) -> Setup:
    """Setup: ``imgs/test/<a|b>/0.png`` (4x4 PNGs), then ``extra(imgs)``."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        copy_checkpoint()(tmp, fx)
        for cls in ("a", "b"):
            (tmp / "imgs" / "test" / cls).mkdir(parents=True)
            Image.new("RGB", (4, 4)).save(tmp / "imgs" / "test" / cls / "0.png")
        extra(tmp / "imgs")

    return setup


def truncated_archive(tmp: Path, fx: Fixtures) -> None:
    copy_checkpoint()(tmp, fx)
    image_folder(lambda imgs: None)(tmp / "src", fx)
    with tarfile.open(tmp / "imgs.tar.gz", "w:gz") as tar:
        tar.add(tmp / "src" / "imgs", arcname=".")
    data = (tmp / "imgs.tar.gz").read_bytes()
    (tmp / "imgs.tar.gz").write_bytes(data[: len(data) // 2])


def outside_link(imgs: Path) -> None:
    Image.new("RGB", (4, 4)).save(imgs.parent / "secret.png")
    (imgs / "test" / "a" / "1.png").symlink_to(imgs.parent / "secret.png")


EVAL_SMALL = ["-d", "synthetic", "--attack", "none", "--n-examples", "8", "--device", "cpu"]

SECURITY_CASES: list[Case] = [
    Case("sec-checkpoint-path-kwarg", ["eval", "run", *EVAL_SMALL], "model_kwargs key 'checkpoint_path' is not allowed",
         setup=hostile_kwarg("checkpoint_path")),
    Case("sec-pretrained-kwarg", ["eval", "run", *EVAL_SMALL], "model_kwargs key 'pretrained' is not allowed",
         setup=forged_checkpoint(model_kwargs={"pretrained": True})),
    Case("sec-unknown-metadata-key", ["eval", "run", *EVAL_SMALL], "unknown metadata key 'modle'",
         setup=forged_checkpoint(modle="randmix_convmixer_tiny")),
    Case("sec-unregistered-model", ["eval", "run", *EVAL_SMALL], "'model' 'resnet50' is not a randmix model",
         setup=forged_checkpoint(model="resnet50")),
    Case("sec-mixer-seed-not-int", ["eval", "run", *EVAL_SMALL], "'mixer_seed' must be a non-negative int, got 1.5",
         setup=forged_checkpoint(model_kwargs={"mixer_seed": 1.5})),
    Case("sec-name-climbs", ["eval", "run", *EVAL_SMALL, "--name", "../x"], "use letters, digits, '-', '_', '.'",
         setup=copy_checkpoint()),
    Case("sec-name-absolute", ["eval", "run", *EVAL_SMALL, "--name", "/tmp/x"], "use letters, digits, '-', '_', '.'",
         setup=copy_checkpoint()),
    Case("sec-dataset-non-image", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs"], "test/b/notes.txt: not a readable image",
         setup=image_folder(lambda imgs: (imgs / "test" / "b" / "notes.txt").write_text("hello"))),
    Case("sec-dataset-truncated-tar", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs.tar.gz"],
         "imgs.tar.gz is a corrupt or truncated archive", setup=truncated_archive),
    Case("sec-dataset-symlink-out", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs"], "links outside the dataset folder",
         setup=image_folder(outside_link)),
]

# ------------------------------------------------------------------------------------------------- eval

EVAL_CASES: list[Case] = [
    Case("eval-unknown-attack", ["eval", "run", "-d", "synthetic", "--attack", "fgsm", "--device", "cpu"],
         "unknown attack 'fgsm'", setup=copy_checkpoint()),
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
