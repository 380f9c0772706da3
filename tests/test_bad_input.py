"""Bad input and faults through the real CLI, one row per case.

Every case runs in a fresh folder (the working directory) that its ``setup`` fills, and must end with
an exit code != 0, one line on stderr that names the problem (``expect`` is a substring of it), nothing on
stdout (unless the case says how it starts), no traceback, and nothing written or overwritten: the folder's
files (names, bytes, permissions) are the same before and after. A case whose command legitimately keeps
something (e.g. the last good resume state of a run that diverged) says so with ``writes=True`` and checks it
in ``after``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import bomb_png
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

import randmix_bench
from randmix_bench.checkpoint import CHECKPOINT_NAME, FORMAT, METADATA_KEY, load_model, read_checkpoint, save_checkpoint
from randmix_bench.cli import app
from randmix_bench.files import exclusive, sha256
from randmix_bench.results import RobustnessResult
from randmix_bench.robustness import EvalOptions, ProgressReporter, evaluate, record_checksum, state_key
from randmix_bench.run_folder import RESUME_NAME, RUN_FORMAT
from randmix_bench.vocab import AAAttack, AAVersion, Attack

Setup = Callable[[Path, "Fixtures"], None]


@dataclass(frozen=True)
class Fixtures:
    """Files shared by every case (built once per module): copy what a case needs into its folder."""

    checkpoint: Path  # a trained randmix_convmixer_tiny (3 channels, 10 classes) for the synthetic dataset
    robust_result: Callable[..., RobustnessResult]  # conftest's valid robustness record
    edit_result: Callable[[Path, dict], None]  # conftest's hand edit of a result file
    interrupt_after: Callable[[int], ProgressReporter]  # conftest's Ctrl-C after n attacked batches


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]  # randmix's arguments; may use {tmp} for the case's folder
    expect: str  # a substring of the one-line error
    setup: Setup | None = None
    writes: bool = False  # the command may leave files (then ``after`` checks them)
    after: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    stdout: str = ""  # how stdout starts, for a command that says something before it stops; else it stays empty
    slow: bool = False  # the command trains or attacks before it stops (pytest's ``slow`` marker)


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


def nested_metadata(tmp: Path, fx: Fixtures) -> None:
    """Setup: ``run/checkpoint.safetensors`` whose metadata JSON holds a list nested 100,000 deep."""
    state, meta = read_checkpoint(fx.checkpoint)
    text = json.dumps({"format": FORMAT, **meta})[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (tmp / "run").mkdir()
    save_file(state, str(tmp / "run" / CHECKPOINT_NAME), metadata={METADATA_KEY: text})


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
    Case("sec-mixer-seed-not-int", ["eval", "run", *EVAL_SMALL], "'mixer_seed' must be an int from 0 to 4294967295",
         setup=forged_checkpoint(model_kwargs={"mixer_seed": 1.5})),
    Case("sec-metadata-nested-100000-deep", ["eval", "run", *EVAL_SMALL], "nested more than 64 levels deep",
         setup=nested_metadata),
    Case("sec-extra-dataset-not-a-name", ["eval", "run", *EVAL_SMALL], "'extra.train.dataset' must be a string",
         setup=forged_checkpoint(extra={"train": {"dataset": ["x"]}})),
    Case("sec-extra-seed-not-int", ["eval", "run", *EVAL_SMALL], "'extra.train.seed' must be an int, got 'abc'",
         setup=forged_checkpoint(extra={"train": {"seed": "abc"}})),
    Case("sec-extra-epochs-done-word", ["eval", "run", *EVAL_SMALL], "'extra.epochs_done' must be an int",
         setup=forged_checkpoint(extra={"epochs_done": "x"})),
    Case("sec-extra-train-not-object", ["eval", "run", *EVAL_SMALL], "'extra.train' must be an object",
         setup=forged_checkpoint(extra={"train": "notadict"})),
    Case("sec-name-climbs", ["eval", "run", *EVAL_SMALL, "--name", "../x"], "use letters, digits, '-', '_', '.'",
         setup=copy_checkpoint()),
    Case("sec-name-absolute", ["eval", "run", *EVAL_SMALL, "--name", "/tmp/x"], "use letters, digits, '-', '_', '.'",
         setup=copy_checkpoint()),
    Case("sec-dataset-non-image", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs"],
         "test/b/notes.txt: not a readable image",
         setup=image_folder(lambda imgs: (imgs / "test" / "b" / "notes.txt").write_text("hello"))),
    Case("sec-dataset-truncated-tar", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs.tar.gz"],
         "imgs.tar.gz is a corrupt or truncated archive", setup=truncated_archive),
    Case("sec-dataset-symlink-out", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs"],
         "links outside the dataset folder",
         setup=image_folder(outside_link)),
]

# ------------------------------------------------------------------------------------------------- eval

CHEAP_EVAL = ["--version", "custom", "--attacks", "apgd-ce", "--n-iter", "5", "--n-examples", "16", "--batch-size", "4",
              "--device", "cpu", "--out", "x.json"]


def killed_eval(tamper: Callable[[Path, dict[str, Any]], None]) -> Setup:
    """Setup: ``eval run ... CHEAP_EVAL`` killed after one batch, then ``tamper(folder, state)``; the
    state is written back as it is left (no new checksum: a tamper that re-signs does so itself)."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        copy_checkpoint()(tmp, fx)
        options = EvalOptions(attack=Attack.AUTOATTACK, version=AAVersion.CUSTOM, attacks=(AAAttack.APGD_CE,), n_iter=5,
                              n_examples=16, batch_size=4, device="cpu", out=tmp / "x.json")
        with pytest.raises(KeyboardInterrupt):
            evaluate(tmp / "run", "synthetic", options, progress=fx.interrupt_after(1))
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
    state["clean"].append(16)  # point 16 of 0..15, re-signed as a forger holding the user's key would
    state["checksum"] = record_checksum(state, state_key())


def rehash_a_batch(tmp: Path, state: dict[str, Any]) -> None:
    """"Nothing broken" in a batch, re-hashed with sha256 as anyone could: no valid signature (HMAC) without the key."""
    edit_a_batch(tmp, state)
    body = {k: v for k, v in state.items() if k != "checksum"}
    state["checksum"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
    Case("eval-huge-seed", ["eval", "run", "-d", "synthetic", "--attack", "apgd-ce", "--seed", "99999999999999999999",
                            "--device", "cpu"], "seed must be in 0..4294967295", setup=copy_checkpoint()),
    Case("eval-negative-seed", ["eval", "run", "-d", "synthetic", "--attack", "apgd-ce", "--seed", "-3",
                                "--device", "cpu"], "seed must be in 0..4294967295, got -3", setup=copy_checkpoint()),
    Case("eval-state-edited-by-hand", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL],
         "x.eval-state was edited or damaged (its checksum does not match its content); delete it",
         setup=killed_eval(edit_a_batch)),
    Case("eval-state-edited-and-re-hashed", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL],
         "x.eval-state was edited or damaged", setup=killed_eval(rehash_a_batch)),
    Case("eval-state-of-another-checkpoint", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL],
         "x.eval-state holds a partial evaluation of another checkpoint", setup=killed_eval(resave_checkpoint)),
    Case("eval-state-past-the-data", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL],
         "its clean predictions name points outside the 16 evaluated; delete it to start over, or pass --force",
         setup=killed_eval(point_past_the_data)),
    Case("eval-3-channel-model-on-fashion-mnist", ["eval", "run", "-d", "fashion-mnist", *CHEAP_EVAL],
         "takes 3-channel images but fashion-mnist has 1-channel images", setup=copy_checkpoint()),
    Case("eval-unknown-attack-in-spaced-list",
         ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--attacks", "apgd-ce, nope"],
         "(unknown: nope)", setup=copy_checkpoint()),
    Case("eval-device-meta", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--device", "meta"],
         "device 'meta' cannot run randmix models", setup=copy_checkpoint()),
    Case("eval-result-locked-by-another-process", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL],
         "another randmix process is writing the result x.json", setup=hold_lock("x.json")),
    Case("eval-sweep-without-the-headline-eps",
         ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--sweep", "1/255,2/255"],
         "--sweep 1/255,2/255 does not hold Linf's default eps 8/255, so the entry's headline eps is ambiguous: pass "
         "--eps (e.g. --eps 2/255), or add 8/255 to the sweep", setup=copy_checkpoint()),
    Case("eval-L2-sweep-without-the-headline-eps",
         ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--norm", "L2", "--sweep", "0.25"],
         "--sweep 0.25 does not hold L2's default eps 0.5", setup=copy_checkpoint()),
    Case("eval-zero-examples", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--n-examples", "0"],
         "n_examples must be >= 1, got 0", setup=copy_checkpoint()),
]

# ---------------------------------------------------------------------------------- leaderboard, verify

def result_file(change: dict | None = None, readme: str | None = None) -> Setup:
    """Setup: ``leaderboards/cifar10/Linf/entry.json``, a valid ranked result for the shared checkpoint
    beside it, with dotted fields changed; and a ``README.md`` when given."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        folder = tmp / "leaderboards" / "cifar10" / "Linf"
        folder.mkdir(parents=True)
        shutil.copy(fx.checkpoint, folder / "entry.safetensors")
        data = fx.robust_result("chans", 0, 0.8, 0.3).model_dump(mode="json")
        data["randmix"]["checkpoint"] = {"path": "entry.safetensors", "sha256": sha256(folder / "entry.safetensors")}
        (folder / "entry.json").write_text(json.dumps(data))
        fx.edit_result(folder / "entry.json", change or {})
        if readme is not None:
            (tmp / "README.md").write_text(readme)

    return setup


def with_readme(make: Callable[[Path], None]) -> Setup:
    """Setup: :func:`result_file` and a ``README.md`` that ``make`` writes (bytes, a size, a special file)."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        result_file()(tmp, fx)
        make(tmp / "README.md")

    return setup


LEADERBOARD = ["leaderboard", "--dir", "leaderboards", "--readme", "README.md"]
LEADERBOARD_CASES: list[Case] = [
    Case("leaderboard-autoattack-acc-not-robust-acc", LEADERBOARD,
         "field 'autoattack_acc': '35.00' is not randmix.robust_acc",
         setup=result_file({"autoattack_acc": "35.00"})),
    Case("leaderboard-nan-accuracy", LEADERBOARD,
         "entry.json: field 'randmix.robust_acc': Input should be a finite number",
         setup=result_file({"randmix.robust_acc": float("nan")})),
    Case("leaderboard-inf-percentage", LEADERBOARD, "field 'clean_acc': 'inf' is not a percentage in [0, 100]",
         setup=result_file({"clean_acc": "inf"})),
    Case("leaderboard-120-percent", LEADERBOARD, "field 'clean_acc': '120.00' is not a percentage in [0, 100]",
         setup=result_file({"clean_acc": "120.00", "randmix.clean_acc": 1.2})),
    Case("leaderboard-robust-above-clean", LEADERBOARD, "robust_acc 0.9 exceeds clean_acc 0.8",
         setup=result_file({"randmix.robust_acc": 0.9, "autoattack_acc": "90.00"})),
    Case("leaderboard-eps-not-positive", LEADERBOARD, "field 'randmix.eps_value'",
         setup=result_file({"randmix.eps_value": 0})),
    Case("leaderboard-readme-markers-reversed", LEADERBOARD, "README.md: damaged leaderboard markers",
         setup=result_file(readme="<!-- leaderboard:end -->\nold\n<!-- leaderboard:start -->\n")),
    Case("leaderboard-readme-marker-duplicated", LEADERBOARD, "README.md: damaged leaderboard markers (2",
         setup=result_file(readme="<!-- leaderboard:start -->\n<!-- leaderboard:end -->\n"
                                  "<!-- leaderboard:start -->\n")),
    Case("leaderboard-readme-end-marker-missing", LEADERBOARD, "README.md: damaged leaderboard markers (1",
         setup=result_file(readme="<!-- leaderboard:start -->\nthe rest of the README\n")),
    Case("leaderboard-missing-dir", ["leaderboard", "--dir", "{tmp}/nowhere"], "nowhere does not exist; pass --dir"),
    Case("leaderboard-dir-without-results", ["leaderboard", "--dir", "{tmp}/etc"],
         "etc holds no result files and no page randmix leaderboard generated, so it is not a leaderboards folder",
         setup=lambda tmp, fx: ((tmp / "etc").mkdir(), (tmp / "etc" / "hosts").write_text("127.0.0.1 localhost\n"))),
    Case("leaderboard-check-dir-without-results", ["leaderboard", "--dir", "{tmp}/etc", "--check"],
         "etc holds no result files and no page randmix leaderboard generated",
         setup=lambda tmp, fx: (tmp / "etc").mkdir()),
    Case("leaderboard-dir-without-results-beside-a-readme", ["leaderboard", "--dir", "{tmp}/docs"],
         "docs holds no result files and no page randmix leaderboard generated",  # not "add markers to README.md"
         setup=lambda tmp, fx: ((tmp / "docs").mkdir(), (tmp / "README.md").write_text("# my project\n"))),
    Case("leaderboard-dir-of-foreign-json", ["leaderboard", "--dir", "{tmp}/project"],  # one line, not one per file
         "none of the 3 JSON files under", setup=lambda tmp, fx: [
             (tmp / "project" / d).mkdir(parents=True) or (tmp / "project" / d / "package.json").write_text('{"a": 1}')
             for d in ("x", "y", "z")]),
    Case("leaderboard-readme-huge", LEADERBOARD, "--readme README.md is 17,825,792 bytes",
         setup=with_readme(lambda p: (p.write_bytes(b""), os.truncate(p, 17 << 20)))),
    Case("leaderboard-readme-not-utf8", LEADERBOARD, "--readme README.md is not UTF-8 text",
         setup=with_readme(lambda p: p.write_bytes(b"<!-- leaderboard:start -->\n\xff\n<!-- leaderboard:end -->\n"))),
]

# ------------------------------------------------------------------------------ train, shuffle, quickstart

def user_file(name: str, text: str = "the user's own file\n") -> Setup:
    """Setup: a file randmix did not write at ``name``."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)

    return setup


def run_with_resume(state: bytes) -> Setup:
    """Setup: ``out`` marked as a randmix run (its run.json) whose resume.pt holds ``state``."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        user_file("out/run.json", json.dumps({"format": RUN_FORMAT, "status": "running"}))(tmp, fx)
        (tmp / "out" / RESUME_NAME).write_bytes(state)

    return setup


def torch_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


_held_locks: dict[Path, ExitStack] = {}


def hold_lock(name: str) -> Setup:
    """Setup: this process holds ``name``'s run lock as a concurrent run would (two opens of one file
    conflict under flock even in one process); :func:`release_lock` lets go."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        _held_locks[tmp] = stack = ExitStack()
        stack.enter_context(exclusive(tmp / name, "a concurrent run"))

    return setup


def release_lock(tmp: Path) -> None:
    """After: release :func:`hold_lock`'s lock; the refused run wrote nothing (the lock file goes with the lock)."""
    _held_locks.pop(tmp).close()
    assert [p.name for p in tmp.iterdir() if p.name != ".cache"] == []


def diverged(tmp: Path) -> None:
    """After: a run that diverged in its first epoch left no checkpoint and no finished record."""
    out = tmp / "out"
    assert not (out / CHECKPOINT_NAME).exists() and not (out / RESUME_NAME).exists()
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    assert run.get("status") != "finished"


TRAIN = ["train", "-r", "quick", "-o", "{tmp}/out", "--device", "cpu", "-q"]
QUICKSTART = ["quickstart", "--dataset", "synthetic", "--out", "{tmp}/qs"]

TRAIN_CASES: list[Case] = [
    Case("train-unknown-recipe", ["train", "-r", "no-such-recipe", "-o", "{tmp}/out"], "unknown recipe"),
    Case("train-nan-lr", [*TRAIN, "--lr", "nan"], "lr must be a finite number, got nan"),
    Case("train-inf-lr", [*TRAIN, "--lr", "inf"], "lr must be a finite number, got inf"),
    Case("train-minus-inf-weight-decay", [*TRAIN, "--wd", "-inf"], "weight_decay must be a finite number"),
    Case("train-nan-momentum", [*TRAIN, "--momentum", "nan"], "momentum must be a finite number"),
    Case("train-inf-grad-clip", [*TRAIN, "--grad-clip", "inf"], "grad_clip must be a finite number"),
    Case("train-nan-label-smoothing", [*TRAIN, "--label-smoothing", "nan"], "label_smoothing must be a finite number"),
    Case("train-inf-schedule", [*TRAIN, "--lr-schedule", "0:0,0.5:inf,1:0"], "lr_schedule must hold finite numbers"),
    Case("train-nan-schedule-fraction", [*TRAIN, "--lr-schedule", "0:0,nan:1,1:0"],
         "lr_schedule must hold finite numbers"),
    Case("train-inf-smooth-sigma", [*TRAIN, "--mixing", "chans-smooth", "--smooth-sigma", "inf"],
         "smooth_sigma must be a finite number"),
    Case("shuffle-train-inf-smooth-sigma", ["shuffle", "train", "-r", "unshuffle-quick", "-o", "{tmp}/out",
                                            "--smooth-sigma", "inf"], "smooth_sigma must be a finite number"),
    Case("shuffle-train-classification-recipe", ["shuffle", "train", "-r", "quick", "-o", "{tmp}/out"],
         "unknown shuffle recipe 'quick'; valid choices: unshuffle-quick"),
    Case("train-loss-on-classification", [*TRAIN, "--loss", "l1"],
         "loss='l1' does not apply to the classification task"),
    Case("train-permutation-seed-on-classification", [*TRAIN, "--permutation-seed", "3"],
         "permutation_seed=3 does not apply to the classification task"),
    Case("train-label-smoothing-on-shuffle", ["train", "-r", "unshuffle-quick", "-o", "{tmp}/out", "--label-smoothing",
                                              "0.1"], "label_smoothing=0.1 does not apply to the shuffle task"),
    Case("train-unshuffler-on-classification", [*TRAIN, "--model", "randmix_unshuffler_tiny"],
         "randmix_unshuffler_tiny is an image-to-image model; train it with a shuffle recipe"),
    Case("train-unknown-optimizer", [*TRAIN, "--optimizer", "adam"],
         "unknown optimizer 'adam'; valid choices: adamw, sgd"),
    Case("train-negative-seed", [*TRAIN, "--seed", "-1"], "seed must be in 0..4294967295, got -1"),
    Case("train-huge-mixer-seed", [*TRAIN, "--mixer-seed", "99999999999999999999999"],
         "mixer_seed must be in 0..4294967295, got 99999999999999999999999"),
    Case("shuffle-train-negative-permutation-seed", ["shuffle", "train", "-r", "unshuffle-quick", "-o", "{tmp}/out",
                                                     "--permutation-seed", "-1"],
         "permutation_seed must be in 0..4294967295"),
    Case("train-unknown-loss", ["train", "-r", "unshuffle-quick", "-o", "{tmp}/out", "--loss", "huber"],
         "unknown loss 'huber'; valid choices: mse, l1"),
    Case("train-diverges", [*TRAIN, "--epochs", "1", "--lr", "1e6"], "training diverged in epoch 1",
         writes=True, after=diverged, slow=True),
    Case("train-resume-foreign-run-json", [*TRAIN, "--resume"], "not a randmix run folder",
         setup=user_file("out/run.json", '{"my": "experiment log"}')),
    Case("train-force-foreign-run-json", [*TRAIN, "--force"], "not a randmix run folder",
         setup=user_file("out/run.json", '{"my": "experiment log"}')),
    Case("train-force-unrelated-files", [*TRAIN, "--force"], "not a randmix run folder",
         setup=user_file("out/notes.txt")),
    Case("train-resume-truncated-state", [*TRAIN, "--resume"], "resume.pt is truncated or corrupt",
         setup=run_with_resume(torch_bytes({"model": {"w": torch.zeros(1000)}, "history": []})[:700])),
    Case("train-resume-garbage-state", [*TRAIN, "--resume"], "resume.pt is truncated or corrupt",
         setup=run_with_resume(b"not a torch file")),
    Case("train-resume-foreign-state", [*TRAIN, "--resume"], "is not a resume state written by randmix train",
         setup=run_with_resume(torch_bytes({"weights": torch.zeros(2)}))),
    Case("train-lock-held", TRAIN, "another randmix process is writing --out", setup=hold_lock("out"),
         writes=True, after=release_lock),
    Case("train-device-meta", [*TRAIN, "--device", "meta"], "device 'meta' cannot run randmix models"),
    Case("train-device-xla", [*TRAIN, "--device", "xla"], "device 'xla' cannot run randmix models"),
    Case("train-out-is-file", TRAIN, "is a file, not a folder", setup=user_file("out")),
    Case("train-out-under-file", ["train", "-r", "quick", "-o", "{tmp}/f/out"], "lies under the file",
         setup=user_file("f")),
    Case("quickstart-n-0", [*QUICKSTART, "-n", "0"], "n_examples must be >= 1"),
    Case("quickstart-n-more-than-test-set", ["quickstart", "--out", "{tmp}/qs", "-n", "20000"],
         "-n 20000 is more than the", stdout="data: "),
    Case("quickstart-n-iter-0", [*QUICKSTART, "--n-iter", "0"], "n_iter must be in 1..10000, got 0"),
    Case("quickstart-threads-0", [*QUICKSTART, "--threads", "0"], "threads must be in 1.."),
    Case("quickstart-threads-huge", [*QUICKSTART, "--threads", "100000"], "threads must be in 1.."),
    Case("train-threads-0", [*TRAIN, "--threads", "0"], "threads must be in 1.."),
    Case("train-threads-word", [*TRAIN, "--threads", "many"], "threads must be in 1.."),
    Case("shuffle-train-threads-negative", ["shuffle", "train", "-r", "unshuffle-quick", "-o", "{tmp}/out",
                                            "--threads", "-2"], "threads must be in 1.."),
    Case("eval-threads-nan", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--threads", "nan"],
         "threads must be in 1.."),
    Case("shuffle-eval-threads-inf", ["shuffle", "eval", "run", "-o", "{tmp}/e", "--threads", "inf"],
         "threads must be in 1.."),
    Case("verify-threads-huge", ["verify", "--threads", "100000"], "threads must be in 1.."),
    Case("reproduce-jobs-0", ["reproduce", "--tier", "small", "--jobs", "0", "--dry-run"], "--jobs must be auto or"),
    Case("reproduce-threads-word", ["reproduce", "--tier", "small", "--threads", "all", "--dry-run"],
         "threads must be in 1.."),
    Case("quickstart-epochs-0", [*QUICKSTART, "--epochs", "0"], "epochs must be in 1..10000, got 0",
         stdout="data: synthetic"),
    Case("quickstart-device-meta", [*QUICKSTART, "--device", "meta"], "device 'meta' cannot run randmix models"),
    Case("quickstart-out-under-file", ["quickstart", "--out", "{tmp}/f/qs"], "lies under the file",
         setup=user_file("f")),
    Case("quickstart-out-is-file", QUICKSTART, "is a file, not a folder", setup=user_file("qs")),
    Case("quickstart-out-foreign-folder", QUICKSTART, "holds files quickstart did not write (notes.txt)",
         setup=user_file("qs/notes.txt")),
    Case("quickstart-out-foreign-run-folder", QUICKSTART, "not a randmix run folder",
         setup=user_file("qs/chans/x.txt")),
    Case("shuffle-eval-out-is-checkpoint", ["shuffle", "eval", "run", "-o", "run/checkpoint.safetensors"],
         "is a file, not a folder", setup=copy_checkpoint()),
    Case("shuffle-eval-out-is-run", ["shuffle", "eval", "run", "-o", "run"], "is one of the run folders being scored",
         setup=copy_checkpoint()),
    Case("shuffle-eval-device-meta", ["shuffle", "eval", "run", "-o", "e", "--device", "meta"],
         "device 'meta' cannot run randmix models", setup=copy_checkpoint()),
    *(Case(f"shuffle-eval-zero-{flag[2:]}", ["shuffle", "eval", "run", "-o", "e", flag, "0"],
           f"{flag[2:].replace('-', '_')} must be >= 1, got 0", setup=copy_checkpoint())
      for flag in ("--n-examples", "--grid-images", "--batch-size")),
]

# ------------------------------------------------------------------- issue #22: inputs that hang or blow up

def in_leaderboards(name: str, content: Callable[[Path], None]) -> Setup:
    """Setup: a valid result (:func:`result_file`) and ``content(leaderboards/cifar10/Linf/<name>)``."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        result_file()(tmp, fx)
        content(tmp / "leaderboards" / "cifar10" / "Linf" / name)

    return setup


def idx_files(images: bytes, labels: bytes = b"\0\0\x08\x01" + (2).to_bytes(4, "big") + b"\0\1") -> Setup:
    """Setup: ``fm/t10k-{images,labels}`` IDX files with these bytes (the checkpoint too)."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        copy_checkpoint()(tmp, fx)
        (tmp / "fm").mkdir()
        (tmp / "fm" / "t10k-images-idx3-ubyte").write_bytes(images)
        (tmp / "fm" / "t10k-labels-idx1-ubyte").write_bytes(labels)

    return setup


IDX_HEAD = b"\0\0\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
EVAL_FM = ["eval", "run", "-d", "fashion-mnist", "--data-dir", "{tmp}/fm", "--attack", "none", "--n-examples", "2",
           "--device", "cpu"]
VERIFY = ["verify", "leaderboards", "--no-robust"]


def with_log(make: Callable[[Path], None]) -> Setup:
    """Setup: a valid entry (:func:`result_file`) and ``log.jsonl`` made by ``make``, for ``verify --log``."""

    def setup(tmp: Path, fx: Fixtures) -> None:
        result_file()(tmp, fx)
        make(tmp / "log.jsonl")

    return setup


def dangling(name: str) -> Setup:
    def setup(tmp: Path, fx: Fixtures) -> None:
        copy_checkpoint()(tmp, fx)
        (tmp / name).symlink_to(tmp / "nowhere" / "x.json")

    return setup


def with_checkpoint(then: Setup) -> Setup:
    def setup(tmp: Path, fx: Fixtures) -> None:
        copy_checkpoint()(tmp, fx)
        then(tmp, fx)

    return setup


INTEGRITY_CASES: list[Case] = [
    Case("eval-eps-empty", ["eval", "run", *EVAL_SMALL, "--eps", ""], "eps '' is not a number",
         setup=copy_checkpoint()),
    Case("eval-eps-arabic-digits", ["eval", "run", *EVAL_SMALL, "--eps", "٨/255"], "is not a number",
         setup=copy_checkpoint()),
    Case("eval-sweep-10000-values", ["eval", "run", *EVAL_SMALL, "--sweep",
                                     ",".join(f"{i}/100000" for i in range(1, 10_001))],
         "the eps list has 10000 values; a sweep takes at most 32", setup=copy_checkpoint()),
    Case("eval-out-is-the-checkpoint-force", ["eval", "run", *EVAL_SMALL, "--out", "run/checkpoint.safetensors",
                                              "--force"], "is the checkpoint being evaluated", setup=copy_checkpoint()),
    Case("eval-out-foreign-file-force", ["eval", "run", *EVAL_SMALL, "--out", "x.json", "--force"],
         "x.json exists and is not a result randmix wrote",
         setup=with_checkpoint(user_file("x.json", '{"my": "notes"}'))),
    Case("eval-out-is-a-folder-force", ["eval", "run", *EVAL_SMALL, "--out", "done", "--force"],
         "--out done is a folder", setup=with_checkpoint(user_file("done/x.json"))),
    Case("eval-out-dangling-symlink", ["eval", "run", *EVAL_SMALL, "--out", "x.json"], "which does not exist",
         setup=dangling("x.json")),
    Case("eval-out-name-over-255-bytes", ["eval", "run", *EVAL_SMALL, "--out", "a" * 300 + ".json"],
         "File name too long", setup=copy_checkpoint()),
    Case("eval-dataset-empty-class-folder", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs"],
         "class folder test/c/ holds no image", setup=image_folder(lambda imgs: (imgs / "test" / "c").mkdir())),
    Case("eval-dataset-decompression-bomb", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs"],
         "declares 9000 x 9000 pixels", setup=image_folder(lambda imgs: bomb_png(imgs / "test" / "b" / "1.png",
                                                                                  9000, 9000))),
    Case("eval-dataset-bomb-past-pils-warning", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs"],
         "declares 13000 x 13000 pixels", setup=image_folder(lambda imgs: bomb_png(imgs / "test" / "b" / "1.png",
                                                                                    13000, 13000))),
    Case("eval-dataset-archive-is-a-fifo", ["eval", "run", *EVAL_SMALL[2:], "-d", "{tmp}/imgs.tar.gz"],
         "is not a regular file", setup=with_checkpoint(lambda tmp, fx: os.mkfifo(tmp / "imgs.tar.gz"))),
    Case("eval-idx-wrong-magic", EVAL_FM, "is not a valid IDX file (magic 00000903",
         setup=idx_files(b"\0\0\x09\x03" + IDX_HEAD[4:] + bytes(2 * 784))),
    Case("eval-idx-truncated", EVAL_FM, "truncated or padded", setup=idx_files(IDX_HEAD + bytes(784))),
    Case("eval-idx-wrong-dimensions", EVAL_FM, "dimensions (2, 28, 27), expected (N, 28, 28)",
         setup=idx_files(IDX_HEAD[:-4] + (27).to_bytes(4, "big") + bytes(2 * 28 * 27))),
    Case("leaderboard-json-fifo", LEADERBOARD, "x.json is not a regular file",
         setup=in_leaderboards("x.json", lambda p: os.mkfifo(p))),
    Case("leaderboard-json-dev-zero", LEADERBOARD, "x.json: a symlink to /dev/zero, outside the leaderboards",
         setup=in_leaderboards("x.json", lambda p: p.symlink_to("/dev/zero"))),
    Case("leaderboard-json-nested-100000-deep", LEADERBOARD, "nested more than 64 levels deep",
         setup=in_leaderboards("x.json", lambda p: p.write_text("[" * 100_000 + "]" * 100_000))),
    Case("leaderboard-json-invalid-utf8", LEADERBOARD, "not UTF-8",
         setup=in_leaderboards("x.json", lambda p: p.write_bytes(b'{"name": "\xff\xfe"}'))),
    Case("leaderboard-users-own-readme", LEADERBOARD, "was not generated by randmix leaderboard",
         setup=in_leaderboards("x", lambda p: (p.parents[2] / "README.md").write_text("# my notes\n"))),
    Case("leaderboard-readme-fifo", LEADERBOARD, "leaderboards/README.md is not a regular file",
         setup=in_leaderboards("x", lambda p: os.mkfifo(p.parents[2] / "README.md"))),
    Case("eval-curve-is-a-fifo-force", ["eval", "run", "-d", "synthetic", *CHEAP_EVAL, "--sweep", "1/255,8/255",
                                        "--force"], "x.png exists and is not a curve randmix eval drew",
         setup=with_checkpoint(lambda tmp, fx: os.mkfifo(tmp / "x.png"))),
    Case("leaderboard-figures-symlink", LEADERBOARD, "figures is a symlink",
         setup=in_leaderboards("x", lambda p: (p.parents[2] / "figures").symlink_to(p.parents[3]))),
    Case("verify-nan-tolerance", [*VERIFY, "--sigmas", "nan"], "must be a finite number >= 0, got nan",
         setup=result_file()),
    Case("verify-batch-size-0", [*VERIFY, "--batch-size", "0"], "batch size must be >= 1, got 0",
         setup=result_file()),
    Case("verify-log-fifo", [*VERIFY, "--log", "log.jsonl"], "log.jsonl is not a regular file",
         setup=with_log(os.mkfifo)),
    Case("verify-log-dev-zero", [*VERIFY, "--log", "log.jsonl"], "log.jsonl is not a regular file",
         setup=with_log(lambda p: p.symlink_to("/dev/zero"))),
    Case("verify-log-nested-100000-deep", [*VERIFY, "--log", "log.jsonl"], "nested more than 64 levels deep",
         setup=with_log(lambda p: p.write_text("[" * 100_000 + "]" * 100_000 + "\n"))),
    Case("train-out-under-proc", ["train", "-r", "quick", "-o", "/proc/randmix-out", "--device", "cpu", "-q"],
         "lock file /proc/.randmix-out.lock cannot be created"),  # not "another process is writing" it
    Case("eval-out-under-proc", ["eval", "run", *EVAL_SMALL, "--out", "/proc/randmix-out.json"],
         "lock file /proc/.randmix-out.json.lock cannot be created", setup=copy_checkpoint()),
    # click's own usage errors (a value an option's type refuses, an unknown option, a missing argument): one line too
    Case("verify-n-nan", ["verify", "--n", "nan"], "Invalid value for '--n' / '-n'"),
    Case("eval-n-examples-not-a-number", ["eval", "run", "--n-examples", "abc"], "(see 'randmix eval --help')"),
    Case("train-unknown-option", ["train", "--nonexistent"], "No such option: --nonexistent"),
    Case("eval-no-checkpoint", ["eval"], "Missing argument 'checkpoint'"),
    Case("unknown-command", ["evaluate"], "No such command 'evaluate'"),
]


def empty_folder(tmp: Path, fx: Fixtures) -> None:
    (tmp / "empty").mkdir()


def outside_result(tmp: Path, fx: Fixtures) -> None:
    """Setup: a valid result, and a second result file that is a symlink to a copy outside leaderboards/."""
    result_file()(tmp, fx)
    shutil.copy(tmp / "leaderboards" / "cifar10" / "Linf" / "entry.json", tmp / "elsewhere.json")
    (tmp / "leaderboards" / "cifar10" / "Linf" / "linked.json").symlink_to(tmp / "elsewhere.json")


# sizes and texts that once got past the checks: a traceback, a run of 1e20 epochs, a file in the current folder
BOUNDS_CASES: list[Case] = [
    Case("train-epochs-1e20", [*TRAIN, "--epochs", "99999999999999999999"], "epochs must be in 1..10000"),
    Case("quickstart-epochs-1e20", [*QUICKSTART, "--epochs", "99999999999999999999"], "epochs must be in 1..10000",
         stdout="data: synthetic"),
    Case("train-randaugment-n-huge", [*TRAIN, "--randaugment-n", "1000000"], "randaugment_n must be in 0..16"),
    Case("train-crop-padding-huge", [*TRAIN, "--crop-padding", "100000000"],
         "crop padding 100000000 is not less than the images' 32x32 pixels; pass --crop-padding from 0 to 31"),
    Case("train-crop-padding-image-size", [*TRAIN, "--crop-padding", "32"], "crop padding 32 is not less than"),
    Case("train-data-dir-empty", [*TRAIN, "--data-dir", ""], "'--data-dir': is empty"),
    Case("eval-transfer-from-empty", ["eval", "run", "-d", "synthetic", "--attack", "transfer", "--transfer-from", ""],
         "'--transfer-from': is empty", setup=copy_checkpoint()),
    Case("train-dataset-empty", [*TRAIN, "--dataset", ""], "unknown dataset ''; valid choices:"),
    Case("train-out-empty", ["train", "-r", "quick", "-o", "", "--device", "cpu"], "'--out' / '-o': is empty"),
    Case("shuffle-eval-out-dir-empty", ["shuffle", "eval", "run", "-o", "", "-n", "4"],
         "'--out-dir' / '-o': is empty"),
    Case("eval-out-empty", ["eval", "run", *EVAL_SMALL, "--out", ""], "'--out': is empty", setup=copy_checkpoint()),
    Case("eval-dataset-empty", ["eval", "run", *EVAL_SMALL[2:], "-d", ""], "unknown dataset ''",
         setup=copy_checkpoint()),
    Case("eval-n-iter-huge", ["eval", "run", "-d", "synthetic", "--version", "custom", "--attacks", "apgd-ce",
                              "--n-iter", "99999999999", "-n", "8"], "n_iter must be in 1..10000",
         setup=copy_checkpoint()),
    Case("eval-n-queries-huge", ["eval", "run", "-d", "synthetic", "--version", "custom", "--attacks", "square",
                                 "--n-queries", "99999999999", "-n", "8"], "n_queries must be in 1..1000000",
         setup=copy_checkpoint()),
    Case("models-in-chans-negative", ["models", "--in-chans", "-1"], "in_chans must be an int from 1 to 16, got -1"),
    Case("models-num-classes-zero", ["models", "--num-classes", "0"], "num_classes must be an int from 1 to 100000"),
    Case("models-published-no-results", ["models", "--published", "--dir", "empty"], "empty holds no result files",
         setup=empty_folder),
    Case("verify-no-results", ["verify", "empty"], "no result files under empty", setup=empty_folder),
    Case("leaderboard-readme-option-fifo", ["leaderboard", "--dir", "leaderboards", "--readme", "notes.md"],
         "--readme notes.md is not a regular file", setup=in_leaderboards("x", lambda p: os.mkfifo(p.parents[3] /
                                                                                                   "notes.md"))),
    Case("leaderboard-result-symlink-out", LEADERBOARD, "linked.json: a symlink to", setup=outside_result),
    Case("leaderboard-negative-params", LEADERBOARD, "params_trainable",
         setup=result_file({"randmix.params_trainable": -10})),
    Case("leaderboard-negative-epochs", LEADERBOARD, "train_epochs", setup=result_file({"randmix.train_epochs": -3})),
    Case("eval-checkpoint-train-seed-huge", ["eval", "run", *EVAL_SMALL], "'extra.train.seed' must be an int from 0 to",
         setup=forged_checkpoint(extra={"train": {"seed": 2**40}})),
    Case("leaderboard-attack-batch-zero", LEADERBOARD, "batch_size",
         setup=result_file({"randmix.attack.batch_size": 0})),
    Case("leaderboard-negative-attack-time", LEADERBOARD, "attack_time_s",
         setup=result_file({"randmix.attack_time_s": {"eps=8/255 apgd-ce": -1.0}})),
    Case("leaderboard-sha256-not-hex", LEADERBOARD, "sha256", setup=result_file({"randmix.checkpoint.sha256": "zz"})),
    Case("leaderboard-curve-climbs", LEADERBOARD, "must be the name of a file beside the result",
         setup=result_file({"randmix.curve_png": "../../../../etc/passwd"})),
]

CASES = SECURITY_CASES + EVAL_CASES + LEADERBOARD_CASES + TRAIN_CASES + INTEGRITY_CASES + BOUNDS_CASES


# ------------------------------------------------------------------------------------------------ runner


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory, train_tiny_checkpoint: Callable[..., Path],
             robust_result: Callable[..., RobustnessResult], edit_result: Callable[[Path, dict], None],
             interrupt_after: Callable[[int], ProgressReporter]) -> Fixtures:
    root = tmp_path_factory.mktemp("bad-input-fixtures")
    return Fixtures(train_tiny_checkpoint(root / "checkpoint.safetensors"), robust_result, edit_result, interrupt_after)


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``root``: content hash (folders: "dir") and permission bits."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            kind = hashlib.sha256(str(path.readlink()).encode()).hexdigest()
        elif path.is_dir() or not path.is_file():
            kind = "dir" if path.is_dir() else "special"  # a FIFO is never read: that would block
        else:
            kind = hashlib.sha256(path.read_bytes()).hexdigest()
        out[rel] = (kind, path.lstat().st_mode & 0o7777)
    return out


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES])
@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")  # printed, it is a second stderr line
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
    assert result.stdout.startswith(case.stdout) if case.stdout else result.stdout == "", result.stdout
    if case.writes:
        assert case.after is not None, "a case that writes must check what it wrote"
        case.after(tmp_path)
    else:
        after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(".cache")}
        assert after == {k: v for k, v in before.items() if not k.startswith(".cache")}
