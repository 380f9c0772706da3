"""Records written by earlier trainers still load, resume, evaluate, verify and count as done.

Until issue #11 a stored training config (run.json's ``config``, resume.pt's, a checkpoint's ``train``) had no
``task``, ``loss`` or ``permutation_seed``: the task's settings lived only in the task record beside it. The
published small-tier checkpoints are such records, read here as they are committed; run folders in that
layout are made by the trainer and then written back without the three fields, as the old trainer left them.
From #11 the stored config is flat with every task's settings (the published paper-slice checkpoints); it stays
so since #24 moved the task settings into classes of their own (``TaskSettings``), converted where it is read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from randmix_bench.checkpoint import METADATA_KEY, read_checkpoint
from randmix_bench.cli import app
from randmix_bench.entries import load_entry
from randmix_bench.jobs import JobState, Paths, TrainJob, tier_jobs
from randmix_bench.plans import Tier
from randmix_bench.recipes import TrainConfig, complete_config, get_recipe
from randmix_bench.run_folder import RESUME_NAME, RUN_NAME
from randmix_bench.shuffle_eval import evaluate_runs
from randmix_bench.tasks import ShuffleSettings
from randmix_bench.train import train
from randmix_bench.verify import VerifyOptions, failures, verify

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "leaderboards" / "checkpoints" / "small"
MOVED = ("task", "loss", "permutation_seed")  # the fields the config gained


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANDMIX_OFFLINE", "1")


def stored_extra(path: Path) -> dict:
    """A checkpoint's ``extra`` exactly as the file holds it (``read_checkpoint`` completes its config)."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()[METADATA_KEY])["extra"]


def to_old_layout(out: Path) -> None:
    """Write ``out``'s run.json and resume.pt back as the trainer before #11 did: configs without the task fields."""
    record = json.loads((out / RUN_NAME).read_text())
    record["config"] = {k: v for k, v in record["config"].items() if k not in MOVED}
    (out / RUN_NAME).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    state = torch.load(out / RESUME_NAME, weights_only=True)
    state["config"] = {k: v for k, v in state["config"].items() if k not in MOVED}
    torch.save(state, out / RESUME_NAME)


@pytest.mark.parametrize(("name", "task"), [("small-convmixer-fmnist-chans-s0", "classification"),
                                            ("small-resnet-fmnist-full-s1", "classification"),
                                            ("small-unshuffle-fmnist-space-s2", "shuffle")])
def test_a_published_checkpoint_reads_as_its_plan_config_and_is_done(name: str, task: str) -> None:
    path = PUBLISHED / f"{name}.safetensors"
    old = stored_extra(path)
    assert not set(MOVED) & old["train"].keys() and old["task"]["task"] == task  # really the old layout
    _, meta = read_checkpoint(path)
    cfg = TrainConfig.from_dict(meta["extra"]["train"])
    assert cfg.task == task and meta["extra"]["task"] == old["task"]
    if task == "shuffle":
        assert cfg.settings_of(ShuffleSettings) == ShuffleSettings(old["task"]["loss"], old["task"]["permutation_seed"])
    job = next(j for j in tier_jobs(Tier.SMALL) if j.name == name)
    assert cfg == job.config  # what the plan asks for today, field for field
    assert job.state(Paths(REPO)) is JobState.DONE


@pytest.mark.parametrize("tier", [Tier.SMALL, Tier.MEDIUM, Tier.PAPER_SLICE])
def test_every_published_checkpoint_reads_as_its_plan_config(tier: Tier) -> None:
    """Both stored layouts (the small tier's, before #11; the flat one after) read back as the config the plan asks
    for today, and a checkpoint in the flat layout holds the very config the trainer writes today (so a run
    trained again writes the same metadata)."""
    paths = Paths(REPO)
    jobs = [j for j in tier_jobs(tier) if isinstance(j, TrainJob) and paths.checkpoint(tier, j.name).is_file()]
    assert jobs
    for job in jobs:
        stored = stored_extra(paths.checkpoint(tier, job.name))["train"]
        assert ("task" in stored) is (tier is not Tier.SMALL), job.name  # the layouts these tiers were written in
        _, meta = read_checkpoint(paths.checkpoint(tier, job.name))
        assert TrainConfig.from_dict(meta["extra"]["train"]) == job.config, job.name
        if tier is not Tier.SMALL:
            assert stored == job.config.to_dict(), job.name
        assert job.state(paths) is JobState.DONE, job.name


def test_complete_config_fills_only_what_is_missing() -> None:
    shuffle = {"task": "shuffle", "loss": "l1", "permutation_seed": 3, "image_size": [28, 28], "permutation": []}
    assert complete_config({"lr": 0.1}, shuffle) == {"lr": 0.1, "task": "shuffle", "loss": "l1", "permutation_seed": 3}
    classification = {"task": "classification", "label_smoothing": 0.1}
    assert complete_config({"lr": 0.1}, classification) == {"lr": 0.1, "task": "classification", "loss": "mse",
                                                            "permutation_seed": 0}
    assert complete_config({"lr": 0.1}, None)["task"] == "classification"  # a record with no task record at all
    new = get_recipe("unshuffle-quick").override(permutation_seed=4).to_dict()
    assert complete_config(new, shuffle) == new  # a new record's own fields win


def test_an_old_shuffle_checkpoint_is_evaluated_and_verified(tmp_path: Path) -> None:
    name = "small-unshuffle-fmnist-chans-s0"
    checkpoint = tmp_path / f"{name}.safetensors"  # the published bytes, beside where its result goes
    shutil.copy(PUBLISHED / checkpoint.name, checkpoint)
    (result,) = evaluate_runs([checkpoint], tmp_path / "eval", n_examples=32, grid_images=2, device="cpu")
    assert (result.permutation_seed, result.loss, result.dataset) == (0, "mse", "fashion-mnist")
    assert result.psnr > result.identity_psnr
    entry = load_entry(REPO / "leaderboards" / "fashion-mnist" / "shuffle" / f"{name}.json")
    checks = verify([entry], VerifyOptions(n=32))
    assert not failures(checks) and checks[0].metric == "PSNR dB"


@pytest.mark.slow
def test_an_old_classification_run_resumes_bit_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        train_killed_after: Callable[..., None]) -> None:
    cfg = get_recipe("quick")
    straight = train(cfg, tmp_path / "straight", device="cpu")
    train_killed_after(1, cfg, tmp_path / "old", monkeypatch)
    to_old_layout(tmp_path / "old")
    args = ["train", "-r", "quick", "-o", str(tmp_path / "old"), "--resume", "--device", "cpu", "-q",
            "--threads", "1"]  # the straight run's (conftest): reductions round by thread count
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    a, _ = read_checkpoint(tmp_path / "straight")
    b, meta = read_checkpoint(tmp_path / "old")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "old" / RUN_NAME).read_text())["test"] == straight["test"]
    assert stored_extra(tmp_path / "old" / "checkpoint.safetensors")["train"]["task"] == "classification"  # new layout


@pytest.mark.slow
def test_an_old_shuffle_run_resumes_with_its_permutation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          train_killed_after: Callable[..., None]) -> None:
    out = tmp_path / "old"
    train_killed_after(1, get_recipe("unshuffle-quick").override(permutation_seed=5), out, monkeypatch)
    to_old_layout(out)
    args = ["shuffle", "train", "-r", "unshuffle-quick", "-o", str(out), "--resume", "--device", "cpu", "-q",
            "--threads", "1"]  # the straight run's (conftest): reductions round by thread count
    other = CliRunner().invoke(app, args)  # the permutation seed lives only in the old task record
    assert other.exit_code == 2 and "permutation_seed=5 (asked 0)" in other.output, other.output
    same = CliRunner().invoke(app, [*args, "--permutation-seed", "5"])
    assert same.exit_code == 0, same.output
    _, meta = read_checkpoint(out)
    assert meta["extra"]["train"]["permutation_seed"] == meta["extra"]["task"]["permutation_seed"] == 5
    assert json.loads((out / RUN_NAME).read_text())["status"] == "finished"
