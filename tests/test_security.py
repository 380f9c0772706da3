"""Untrusted files cannot run code, escape their folder, or come out unreadable to others.

Checkpoint metadata, result files, entry names and image-folder datasets are all input a stranger can
write (a pull request adding a leaderboard entry, a downloaded dataset): each is checked before use.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import stat
import tarfile
from pathlib import Path

import pytest
from safetensors.torch import save_file
from typer.testing import CliRunner

from randmix_bench import files
from randmix_bench.checkpoint import METADATA_KEY, CheckpointError, read_checkpoint, save_checkpoint
from randmix_bench.cli import app
from randmix_bench.data import load_split
from randmix_bench.entries import load_entry
from randmix_bench.errors import RandmixError
from randmix_bench.files import sha256
from randmix_bench.models import create_model
from randmix_bench.result_files import ResultError, check_entry_name, checkpoint_ref, read_result
from randmix_bench.robustness import EvalOptions, evaluate
from randmix_bench.tasks import ShuffleTask
from randmix_bench.vocab import Attack

MODEL = "randmix_convmixer_tiny"
KWARGS = {"mixing": "chans", "mixer_seed": 0, "in_chans": 3, "num_classes": 10, "mean": [0.5] * 3, "std": [0.25] * 3}
runner = CliRunner()


class WritesMarker:
    """A pickle payload: unpickling it creates ``path`` (what a hostile ``checkpoint_path`` would do)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return open, (self.path, "w")


def forge(path: Path, **changes: object) -> Path:
    """A checkpoint of the tiny model whose metadata record has ``changes`` applied (``None`` deletes)."""
    record = {"format": "randmix-checkpoint/1", "model": MODEL, "model_kwargs": dict(KWARGS), "extra": {}}
    for key, value in changes.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    state = {k: v.contiguous() for k, v in create_model(MODEL, **KWARGS).state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(record)})
    return path


def hostile_checkpoint(folder: Path, key: str) -> tuple[Path, Path]:
    """(checkpoint whose ``model_kwargs[key]`` points at a live pickle payload, the marker it would create)."""
    marker = folder / "pwned"
    payload = folder / "payload.pth"
    payload.write_bytes(pickle.dumps(WritesMarker(marker)))
    pickle.loads(payload.read_bytes())  # the payload is live: loading it does write the marker ...
    assert marker.exists()
    marker.unlink()  # ... so its absence below means it was never loaded
    return forge(folder / "hostile.safetensors", model_kwargs=dict(KWARGS, **{key: str(payload)})), marker


@pytest.mark.parametrize("key", ["checkpoint_path", "pretrained_cfg_overlay"])
def test_hostile_model_kwargs_never_run_through_eval_or_verify(tmp_path: Path, key: str) -> None:
    board = tmp_path / "leaderboards" / "synthetic" / "Linf"
    good = forge(board / "x.safetensors")
    evaluate(good, "synthetic",
             EvalOptions(attack=Attack.NONE, n_examples=8, device="cpu", name="x", out=board / "x.json"))
    ckpt, marker = hostile_checkpoint(tmp_path, key)
    shutil.copy(ckpt, board / "x.safetensors")  # the entry now points at the hostile file, hash and all
    data = json.loads((board / "x.json").read_text())
    data["randmix"]["checkpoint"]["sha256"] = sha256(board / "x.safetensors")
    (board / "x.json").write_text(json.dumps(data))

    ev = runner.invoke(app, ["eval", str(ckpt), "-d", "synthetic", "--attack", "none", "--n-examples", "8",
                             "--device", "cpu", "--out", str(tmp_path / "r.json")])
    assert ev.exit_code == 2 and len(ev.stderr.strip().splitlines()) == 1, ev.output
    assert f"model_kwargs key {key!r} is not allowed" in ev.stderr and str(ckpt) in ev.stderr
    ver = runner.invoke(app, ["verify", str(tmp_path / "leaderboards")], terminal_width=400)
    assert ver.exit_code == 1 and f"model_kwargs key {key!r} is not allowed" in ver.output
    assert not marker.exists() and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("changes, expect", [
    ({"model_kwargs": dict(KWARGS, pretrained=True)}, "model_kwargs key 'pretrained' is not allowed"),
    ({"model_kwargs": dict(KWARGS, features_only=True)}, "model_kwargs key 'features_only' is not allowed"),
    ({"model_kwargs": dict(KWARGS, mixer_seed=True)}, "'mixer_seed' must be an int from 0 to 4294967295, got True"),
    ({"model_kwargs": dict(KWARGS, mixer_seed="0")}, "'mixer_seed' must be an int from 0 to 4294967295"),
    ({"model_kwargs": dict(KWARGS, mixer_seed=2**40)}, "'mixer_seed' must be an int from 0 to 4294967295"),
    ({"extra": {"epochs_done": -1}}, "'extra.epochs_done' must be an int from 0 to 10000, got -1"),
    ({"extra": {"train": {"seed": 2**40}}}, "'extra.train.seed' must be an int from 0 to 4294967295"),
    ({"model_kwargs": dict(KWARGS, in_chans=10**9)}, "'in_chans' must be an int from 1 to 16"),
    ({"model_kwargs": dict(KWARGS, smooth_sigma=float("nan"))}, "'smooth_sigma' must be a finite number"),
    ({"model_kwargs": dict(KWARGS, mean=[0.5, "x", 0.5])}, "'mean' must be a list of 1 to 16 finite numbers"),
    ({"model_kwargs": dict(KWARGS, std=[0.0])}, "'std' must be a list of 1 to 16 finite positive numbers"),
    ({"model_kwargs": dict(KWARGS, mixing="all")}, "'mixing' must be one of full, chans, space, chans-smooth"),
    ({"model_kwargs": [1, 2]}, "'model_kwargs' must be an object"),
    ({"modle": MODEL}, "unknown metadata key 'modle'"),
    ({"model": "resnet50"}, "'model' 'resnet50' is not a randmix model"),
    ({"model": None}, "'model' None is not a randmix model"),
    ({"extra": "x"}, "'extra' must be an object"),
])
def test_metadata_outside_the_allowlist_is_refused(tmp_path: Path, changes: dict, expect: str) -> None:
    path = forge(tmp_path / "c.safetensors", **changes)
    with pytest.raises(CheckpointError, match="^" + str(path).replace(".", r"\.") + ": ") as e:
        read_checkpoint(path)
    assert expect in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("record", [
    {"task": "shuffle"},
    {"task": "shuffle", "image_size": [100_000, 100_000], "permutation_seed": 0, "loss": "mse", "permutation": [0]},
    {"task": "shuffle", "image_size": "ab", "permutation_seed": 0, "loss": "mse", "permutation": [0, 1]},
], ids=["fields-missing", "huge-image-size", "image-size-not-numbers"])
def test_a_damaged_shuffle_task_record_is_refused_before_any_work(record: dict) -> None:
    """A shuffle checkpoint's task record is its metadata: missing fields are one line, and an image size that
    disagrees with the stored permutation is refused before a permutation of that size is built."""
    with pytest.raises(RandmixError, match="task record is damaged"):
        ShuffleTask.from_record(record)


def test_unshuffler_kwargs_have_no_classes(tmp_path: Path) -> None:
    kwargs = {"mixing": "chans", "mixer_seed": 0, "in_chans": 3, "num_classes": 10}
    path = tmp_path / "u.safetensors"
    save_checkpoint(path, create_model("randmix_unshuffler_tiny", in_chans=3), "randmix_unshuffler_tiny", kwargs)
    with pytest.raises(CheckpointError, match="'num_classes' is not allowed for randmix_unshuffler_tiny"):
        read_checkpoint(path)


# ------------------------------------------------------------------------------- checkpoint references


def board_entry(root: Path, ckpt_rel: str) -> Path:
    """``root/synthetic/Linf/x.json`` evaluated from a checkpoint at ``root/<ckpt_rel>``."""
    ckpt = forge(root / ckpt_rel)
    out = root / "synthetic" / "Linf" / "x.json"
    evaluate(ckpt, "synthetic", EvalOptions(attack=Attack.NONE, n_examples=8, device="cpu", name="x", out=out))
    return out


@pytest.mark.parametrize("ckpt_rel, recorded", [
    ("synthetic/Linf/x.safetensors", "x.safetensors"),  # beside the result
    ("checkpoints/x.safetensors", "checkpoints/x.safetensors"),  # elsewhere in the leaderboards folder
])
def test_references_are_relative_and_resolve_inside_the_root(tmp_path: Path, ckpt_rel: str, recorded: str) -> None:
    root = tmp_path / "leaderboards"
    out = board_entry(root, ckpt_rel)
    assert read_result(out).randmix.checkpoint.path == recorded
    assert load_entry(out, root).checkpoint == (root / ckpt_rel).resolve()
    assert load_entry(out).checkpoint == (root / ckpt_rel).resolve()  # a single file finds its leaderboards folder


@pytest.mark.parametrize("path", ["/etc/passwd", "../x.safetensors", "a/../../x", "a\\..\\x", "", "./x", "a//b"])
def test_absolute_and_climbing_references_are_refused_on_read(tmp_path: Path, path: str) -> None:
    out = board_entry(tmp_path / "leaderboards", "synthetic/Linf/x.safetensors")
    data = json.loads(out.read_text())
    data["randmix"]["checkpoint"]["path"] = path
    out.write_text(json.dumps(data))
    with pytest.raises(ResultError, match=f"^{out}: field 'randmix.checkpoint.path'"):
        read_result(out)


def test_checkpoint_outside_the_leaderboards_folder_is_refused(tmp_path: Path) -> None:
    """Written by eval (the result names it), refused by leaderboard and verify: a symlink out of the
    folder and a checkpoint in a folder above it are both outside."""
    root = tmp_path / "leaderboards"
    out = board_entry(root, "synthetic/Linf/x.safetensors")
    shutil.move(root / "synthetic/Linf/x.safetensors", tmp_path / "x.safetensors")
    (root / "synthetic/Linf/x.safetensors").symlink_to(tmp_path / "x.safetensors")
    for args in (["leaderboard", "--dir", str(root), "--readme", str(tmp_path / "none.md")], ["verify", str(root)],
                 ["verify", str(out)]):
        result = runner.invoke(app, args, terminal_width=400)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        (line,) = [text for text in result.stderr.splitlines() if str(out) in text]
        assert "field 'randmix.checkpoint.path'" in line and "leads outside the leaderboards folder" in line

    above = board_entry(tmp_path / "outer" / "leaderboards", "../x.safetensors")  # written relative to outer/
    assert read_result(above).randmix.checkpoint.path == "x.safetensors"
    with pytest.raises(ResultError, match=f"^{above}: field 'randmix.checkpoint.path': 'x.safetensors' does not exist"):
        load_entry(above, tmp_path / "outer" / "leaderboards")


def test_a_checkpoint_sharing_no_folder_with_the_result_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ResultError, match="shares no folder with the result"):
        checkpoint_ref(Path("/usr/lib/x.safetensors"), tmp_path / "x.json", "0" * 64, "0" * 64)


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "a\\b", ".hidden", "..", "a..b", "x\0", "", "a b",
                                  "x" * 101])
def test_unsafe_entry_names_are_refused(name: str) -> None:
    with pytest.raises(RandmixError, match="use letters, digits, '-', '_', '.'"):
        check_entry_name(name)


@pytest.mark.parametrize("name", ["full-s0", "convmixer_256.chans", "A1"])
def test_ordinary_entry_names_pass(name: str) -> None:
    assert check_entry_name(name) == name


def test_shuffle_eval_refuses_a_run_folder_name_that_is_not_a_file_name(tmp_path: Path) -> None:
    run = tmp_path / ".run"
    run.mkdir()
    result = runner.invoke(app, ["shuffle", "eval", str(run), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "run folder name '.run' is not a valid entry name" in result.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------- image folders


def png(color: int = 0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (color, color, color)).save(buf, format="PNG")
    return buf.getvalue()


def image_folder(root: Path) -> Path:
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            (root / split / cls / "0.png").write_bytes(png())
    return root


def test_symlink_out_of_an_image_folder_is_refused(tmp_path: Path) -> None:
    folder = image_folder(tmp_path / "imgs")
    (tmp_path / "secret.png").write_bytes(png(255))
    (folder / "test" / "a" / "1.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(RandmixError, match=r"1\.png links outside the dataset folder"):
        load_split(str(folder), train=False, cache_dir=tmp_path / "cache")


def test_non_image_file_names_the_file(tmp_path: Path) -> None:
    folder = image_folder(tmp_path / "imgs")
    (folder / "test" / "b" / "notes.txt").write_text("hello")
    with pytest.raises(RandmixError, match=r"test/b/notes\.txt: not a readable image"):
        load_split(str(folder), train=False, cache_dir=tmp_path / "cache")


def tar_of(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_archive_members_that_climb_or_are_absolute_are_refused(tmp_path: Path) -> None:
    for bad in ("../test/a/0.png", "/test/a/0.png", "test/../../a/0.png"):
        archive = tar_of(tmp_path / "d.tar.gz", {"test/a/0.png": png(), bad: png()})
        with pytest.raises(RandmixError, match="is an absolute or '..' path"):
            load_split(str(archive), train=False, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE], ids=["symlink", "hard-link"])
def test_archive_members_that_are_links_are_refused(tmp_path: Path, kind: bytes) -> None:
    """A link member is never followed (nothing is extracted), and never silently dropped either: that would
    change the dataset without a word."""
    archive = tmp_path / "d.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # two images, then a link among them
        for name in ("test/a/0.png", "test/b/0.png"):
            info = tarfile.TarInfo(name)
            info.size = len(png())
            tar.addfile(info, io.BytesIO(png()))
        link = tarfile.TarInfo("test/a/1.png")
        link.type, link.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else "test/b/0.png"
        tar.addfile(link)
    with pytest.raises(RandmixError, match=r"member 'test/a/1\.png' is a link"):
        load_split(str(archive), train=False, cache_dir=tmp_path / "cache")


def noise_png() -> bytes:
    """A 32 x 32 PNG of random pixels: incompressible, so an archive of them cut in half ends inside a member."""
    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", (32, 32), os.urandom(32 * 32 * 3)).save(buf, format="PNG")
    return buf.getvalue()


def test_truncated_archive_names_the_archive(tmp_path: Path) -> None:
    archive = tar_of(tmp_path / "d.tar.gz", {f"test/a/{i}.png": noise_png() for i in range(8)})
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(RandmixError, match=f"^{archive} is a corrupt or truncated archive"):
        load_split(str(archive), train=False, cache_dir=tmp_path / "cache")


def test_an_archive_fails_at_its_first_member_that_is_no_image(tmp_path: Path) -> None:
    """Members are decoded as they are read: an archive of large members that are no images (a small gzip that
    inflates to gigabytes) fails at the first, before the rest is read (here a link, refused if it were reached)."""
    zeros = bytes(1 << 20)
    with tarfile.open(tmp_path / "d.tar.gz", "w:gz") as tar:
        for i in range(4):
            info = tarfile.TarInfo(f"test/a/{i}.png")
            info.size = len(zeros)
            tar.addfile(info, io.BytesIO(zeros))
        link = tarfile.TarInfo("test/a/9.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(RandmixError, match="test/a/0.png: not a readable image"):
        load_split(str(tmp_path / "d.tar.gz"), train=False, cache_dir=tmp_path / "cache")


# ---------------------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_keep_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int) -> None:
    monkeypatch.setattr(files, "UMASK", umask)
    files.write_json(tmp_path / "r.json", {"a": 1})
    save_checkpoint(tmp_path / "c.safetensors", create_model(MODEL), MODEL, {})
    for name in ("r.json", "c.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_umask_is_the_process_umask() -> None:
    old = os.umask(0o022)
    os.umask(old)
    assert files.UMASK == old
