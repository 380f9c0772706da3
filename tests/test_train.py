"""The trainer: it learns, leaves frozen mixers alone, resumes bit-exactly, refuses bad input, runs DDP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from randmix_bench import train as train_module
from randmix_bench.checkpoint import load_model, read_checkpoint
from randmix_bench.cli import app
from randmix_bench.data import dataset_info, load_split
from randmix_bench.freezing import FrozenConv2d
from randmix_bench.models import create_model
from randmix_bench.recipes import RECIPES, get_recipe
from randmix_bench.run_folder import RESUME_NAME
from randmix_bench.tasks import ClassificationSettings, accuracy, task_for
from randmix_bench.train import make_optimizer, train
from randmix_bench.vocab import Mixing

QUICK_CHANS = get_recipe("quick").override(mixing=Mixing.CHANS)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANDMIX_OFFLINE", "1")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("runs") / "quick-chans"
    return out, train(QUICK_CHANS, out, device="cpu")


@pytest.mark.slow
def test_short_run_learns_and_records_itself(quick_run: tuple[Path, dict[str, Any]]) -> None:
    out, summary = quick_run
    losses = [h["train_loss"] for h in summary["history"]]
    assert losses[0] < math.log(10) and losses[1] < 0.6 * losses[0]
    assert summary["test"]["test_acc"] > 0.8  # chance is 0.1
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["epochs_done"] == 2 and run["seed"] == 0
    assert run["config"] == QUICK_CHANS.to_dict() and run["task"] == {"task": "classification", "label_smoothing": 0.0}
    assert run["provenance"]["versions"]["torch"] and run["provenance"]["device"].startswith("cpu")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "run.json"]  # resume state removed
    model, meta = load_model(out)
    assert meta["extra"]["train"]["mixing"] == "chans"
    assert accuracy(model, load_split("synthetic", False), 512) == run["test"]["test_acc"]


@pytest.mark.slow
def test_frozen_mixers_do_not_move(quick_run: tuple[Path, dict[str, Any]]) -> None:
    out, summary = quick_run
    state, _ = read_checkpoint(out)
    fresh, kwargs = QUICK_CHANS.build_model(task_for(QUICK_CHANS), dataset_info(QUICK_CHANS.dataset))
    assert kwargs == summary["model_kwargs"]  # the trainer's initial model, rebuilt
    frozen = [name for name, m in fresh.named_modules() if isinstance(m, FrozenConv2d)]
    assert frozen
    for name in frozen:
        assert torch.equal(state[f"{name}.weight"], fresh.get_submodule(name).weight)
    learned = dict(fresh.named_parameters())
    assert all(not torch.equal(state[k], p) for k, p in learned.items() if k.endswith("channel.weight"))


def test_optimizer_holds_only_learned_parameters() -> None:
    model = create_model("randmix_convmixer_tiny", mixing="chans")
    cfg = get_recipe("quick")
    opt = make_optimizer(model, cfg, fused=False)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in model.parameters()}
    assert not any(id(m.weight) in in_opt for m in model.modules() if isinstance(m, FrozenConv2d))
    decay, no_decay = make_optimizer(model, cfg.override(decay_norm_bias=False), fused=False).param_groups
    assert no_decay["weight_decay"] == 0 and all(p.ndim == 1 for p in no_decay["params"])
    assert decay["weight_decay"] == cfg.weight_decay and all(p.ndim > 1 for p in decay["params"])


def test_convmixer_recipe_schedule() -> None:
    cfg = RECIPES["convmixer-cifar10"]
    assert (cfg.optimizer, cfg.batch_size, cfg.epochs, cfg.weight_decay) == ("adamw", 512, 25, 0.005)
    assert (cfg.randaugment_n, cfg.randaugment_m, cfg.task_settings) == (2, 12, ClassificationSettings(0.0))
    total = 100  # lr of step s is the schedule at (s + 1) / total
    assert cfg.lr_at(19, total) == pytest.approx(0.025)
    assert cfg.lr_at(39, total) == pytest.approx(0.05)  # peak at 2/5
    assert cfg.lr_at(79, total) == pytest.approx(0.05 / 20)  # lr/20 at 4/5
    assert cfg.lr_at(99, total) == 0.0


@pytest.mark.slow
def test_resume_after_a_kill_is_bit_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          train_killed_after: Callable[..., None]) -> None:
    # Every source of randomness on: crops, flips, RandAugment, and three epochs.
    cfg = get_recipe("quick").override(epochs=3, batch_size=256, flip=True, randaugment_n=1, randaugment_m=9)
    straight = train(cfg, tmp_path / "straight", device="cpu")
    train_killed_after(2, cfg, tmp_path / "resumed", monkeypatch)
    resumed = train(cfg, tmp_path / "resumed", resume=True, device="cpu")

    a, _ = read_checkpoint(tmp_path / "straight")
    b, _ = read_checkpoint(tmp_path / "resumed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in straight["history"]]
    assert resumed["test"] == straight["test"]


# ------------------------------------------------------------------------------------------------ CLI


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["train", *args])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--recipe", "nope"], "unknown recipe 'nope'"),
        (["--recipe", "quick", "--model", "resnet9000"], "unknown model 'resnet9000'"),
        (["--recipe", "quick", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--recipe", "quick", "--epochs", "-1"], "epochs must be in 1..10000, got -1"),
        (["--recipe", "quick", "--mixing", "diagonal"], "unknown mixing mode 'diagonal'"),
        (["--recipe", "quick", "--lr-schedule", "0:0,0.5:1"], "lr_schedule must start at fraction 0, end at 1"),
        (["--recipe", "quick", "--dataset", "cifar10", "--data-dir", "{tmp}"], "cifar10 not found"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "run"
    result = _cli(*[a.format(tmp=tmp_path) for a in args], "--out", str(out))
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_existing_run_is_never_overwritten_by_mistake(quick_run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = quick_run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    cases = [
        ([], "is not empty; pass --resume"),
        (["--resume", "--model", "randmix_resnet_tiny"], "checkpoint in"),  # another model's checkpoint
        (["--resume"], "has finished; nothing to resume"),
    ]
    for extra, message in cases:
        result = _cli("--recipe", "quick", "--mixing", "chans", "--out", str(out), *extra)
        assert result.exit_code == 2 and message in result.output, result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.slow
def test_resume_refuses_changed_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         train_killed_after: Callable[..., None]) -> None:
    out = tmp_path / "run"
    train_killed_after(1, get_recipe("quick"), out, monkeypatch)
    result = _cli("--recipe", "quick", "--lr", "0.5", "--out", str(out), "--resume")
    assert result.exit_code == 2 and "lr=0.03 (asked 0.5)" in result.output, result.output


@pytest.mark.slow
def test_a_diverging_epoch_is_never_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights that turn NaN in epoch 2 (with every loss finite) stop the run; epoch 1's resume state and
    record stay, and nothing of epoch 2 is saved."""
    out, step = tmp_path / "run", train_module.train_step
    steps_per_epoch = 2048 // 128

    def step_then_poison(net: torch.nn.Module, *args: Any) -> torch.Tensor:
        loss = step(net, *args)
        step_then_poison.calls += 1  # type: ignore[attr-defined]
        if step_then_poison.calls == 2 * steps_per_epoch:  # type: ignore[attr-defined]
            next(net.parameters()).data.fill_(math.nan)  # after epoch 2's last loss: only the weight check sees it
        return loss

    step_then_poison.calls = 0  # type: ignore[attr-defined]
    monkeypatch.setattr(train_module, "train_step", step_then_poison)
    result = _cli("--recipe", "quick", "--epochs", "3", "--out", str(out), "--device", "cpu", "--quiet")
    assert result.exit_code == 2 and "training diverged in epoch 2" in result.output, result.output
    assert "resume.pt keeps epoch 1" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["resume.pt", "run.json"]
    state = torch.load(out / RESUME_NAME, weights_only=True)
    assert len(state["history"]) == 1
    assert all(t.isfinite().all() for t in state["model"].values() if t.is_floating_point())
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and "diverged in epoch 2" in run["error"] and run["epochs_done"] == 1
    monkeypatch.setattr(train_module, "train_step", step)  # a failed run resumes from the epoch it kept
    resumed = _cli("--recipe", "quick", "--epochs", "3", "--out", str(out), "--device", "cpu", "--quiet", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


LOCK_HOLDER = """
import sys, time
from randmix_bench.files import exclusive
with exclusive(sys.argv[1], "a concurrent run"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_process_on_the_same_out_is_refused_at_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = _cli("--recipe", "quick", "--out", str(out), "--device", "cpu", "--quiet")
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2 and f"another randmix process is writing --out {out}" in result.output, result.output
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_out_under_a_read_only_folder_is_refused_up_front(tmp_path: Path) -> None:
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    result = _cli("--recipe", "quick", "--out", str(read_only / "run"))
    assert result.exit_code == 2 and "is read-only" in result.output, result.output


@pytest.mark.slow
def test_force_starts_our_run_over_and_keeps_other_files(tmp_path: Path) -> None:
    """--force replaces the run's own files (no stale checkpoint beside a new run) and nothing else."""
    out = tmp_path / "run"
    train(get_recipe("quick").override(epochs=1), out, device="cpu")
    (out / "notes.txt").write_text("mine")
    old = (out / "checkpoint.safetensors").read_bytes()
    result = _cli("--recipe", "quick", "--epochs", "1", "--seed", "1", "--out", str(out), "--force", "--quiet")
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine" and (out / "checkpoint.safetensors").read_bytes() != old
    assert json.loads((out / "run.json").read_text())["seed"] == 1


# ------------------------------------------------------------------------------------------------ DDP


# Runs `python -m randmix_bench.cli` under torchrun, keeping a handle on the model each rank builds so
# the test can compare the two replicas afterwards.
DDP_RANK = """
import os, runpy, sys
import torch
from randmix_bench.recipes import TrainConfig

built = []
build_model = TrainConfig.build_model


def keep_model(*args):
    model, kwargs = build_model(*args)
    built.append(model)
    return model, kwargs


TrainConfig.build_model = keep_model
try:
    runpy.run_module("randmix_bench.cli", run_name="__main__", alter_sys=True)
except SystemExit as e:
    if e.code:
        raise
torch.save(dict(built[0].named_parameters()), os.environ["PARAMS"] + os.environ["RANK"])
"""


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    script = tmp_path / "rank.py"
    script.write_text(DDP_RANK)
    env = dict(os.environ, OMP_NUM_THREADS="1", RANDMIX_OFFLINE="1", PARAMS=str(tmp_path / "params"),
               PYTHONPATH=str(Path(train_module.__file__).parents[1]))  # the checkout under test, not an installed copy
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           "train", "--recipe", "quick", "--out", str(out), "--device", "cpu", "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "finished"
    assert run["steps_per_epoch"] == 2048 // 128  # the global batch, not 2x as many half batches
    assert run["test"]["test_acc"] > 0.8
    # Each rank trained on its own half of every batch; DDP's gradient averaging keeps them identical.
    rank0, rank1 = (torch.load(tmp_path / f"params{r}", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    model, _ = load_model(out)
    assert all(torch.equal(p, rank0[k]) for k, p in model.named_parameters())


@pytest.mark.slow
def test_train_reports_to_its_reporter_and_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[Any, ...]] = []

    class Recorder:
        def start(self, steps: int, epochs: int, epochs_done: int) -> None:
            calls.append(("start", steps, epochs, epochs_done))

        def step(self, lr: float) -> None:
            calls.append(("step",))

        def epoch(self, record: dict[str, Any], epochs: int) -> None:
            calls.append(("epoch", record["epoch"], epochs))

        def stop(self) -> None:
            calls.append(("stop",))

        def finished(self, summary: dict[str, Any], out: Path) -> None:
            calls.append(("finished", summary["status"], out))

    out = tmp_path / "run"
    train(get_recipe("quick").override(epochs=1), out, device="cpu", reporter=Recorder())
    steps = 2048 // 128
    assert calls == [("start", steps, 1, 0), *[("step",)] * steps, ("epoch", 1, 1), ("stop",),
                     ("finished", "finished", out)]
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_train_command_draws_progress_unless_quiet(tmp_path: Path) -> None:
    drawn = _cli("--recipe", "quick", "--epochs", "1", "--out", str(tmp_path / "drawn"), "--device", "cpu")
    assert drawn.exit_code == 0 and "epoch 1/1  loss " in drawn.output, drawn.output
    assert "1 epoch in" in drawn.output and f"-> {tmp_path / 'drawn'}" in drawn.output
    quiet = _cli("--recipe", "quick", "--epochs", "1", "--out", str(tmp_path / "quiet"), "--device", "cpu", "--quiet")
    assert quiet.exit_code == 0 and quiet.output == ""
