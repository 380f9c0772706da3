"""Pixel-shuffle track: permutation, metrics, task, training through the trainer, grid and CLI (CPU)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import nn
from typer.testing import CliRunner

from randmix_bench.checkpoint import load_model
from randmix_bench.cli import app
from randmix_bench.data import dataset_info, load_split
from randmix_bench.freezing import count_parameters
from randmix_bench.models import create_model, model_task
from randmix_bench.recipes import RECIPES, TrainConfig
from randmix_bench.result_files import read_result
from randmix_bench.results import ShuffleResult
from randmix_bench.shuffle_eval import grid_size, save_grid
from randmix_bench.tasks import task_for
from randmix_bench.tasks.metrics import PSNR_MAX_DB, psnr, ssim
from randmix_bench.tasks.shuffle import ShuffleTask, invert_permutation, make_permutation, scramble, unscramble

runner = CliRunner()


# ---------------------------------------------------------------------------------------- permutation


def test_permutation_is_the_documented_sha256_order_and_reproducible() -> None:
    n = 28 * 28
    perm = make_permutation(7, n)
    expected = sorted(range(n), key=lambda i: hashlib.sha256(f"randmix-shuffle:7:{i}".encode()).digest()[:8])
    assert perm.tolist() == expected  # an independent re-derivation: no library RNG involved
    assert torch.equal(perm, make_permutation(7, n))
    assert not torch.equal(perm, make_permutation(8, n))
    assert torch.equal(perm.sort().values, torch.arange(n))


def test_scramble_is_one_permutation_for_all_channels_and_inverts() -> None:
    perm = make_permutation(0, 32 * 32)
    x = torch.rand(4, 3, 32, 32)
    s = scramble(x, perm)
    assert not torch.equal(s, x)
    for c in range(3):  # every channel moved the same way as a lone channel would be
        assert torch.equal(s[:, c], scramble(x[:, c : c + 1], perm)[:, 0])
    assert torch.equal(s.flatten(-2)[0, 0, 5], x.flatten(-2)[0, 0, perm[5]])
    assert torch.equal(unscramble(s, perm), x)
    assert torch.equal(invert_permutation(invert_permutation(perm)), perm)
    with pytest.raises(ValueError, match="does not fit 28x28"):
        scramble(torch.rand(1, 1, 28, 28), perm)


def test_task_config_round_trips_and_detects_an_altered_permutation() -> None:
    task = ShuffleTask((28, 28), permutation_seed=3, loss="l1")
    again = ShuffleTask.from_record(json.loads(json.dumps(task.config())))
    assert torch.equal(again.permutation, task.permutation) and again.loss == "l1"
    altered = task.config()
    altered["permutation"][:2] = altered["permutation"][1::-1]
    with pytest.raises(ValueError, match="not the one seed 3 names"):
        ShuffleTask.from_record(altered)
    with pytest.raises(ValueError, match="unknown loss 'l2'"):
        ShuffleTask((28, 28), loss="l2")


# -------------------------------------------------------------------------------------------- metrics


def test_psnr_known_value_and_cap() -> None:
    x = torch.full((2, 1, 16, 16), 0.5, dtype=torch.float64)
    assert psnr(x + 0.1, x).tolist() == pytest.approx([20.0, 20.0], abs=1e-9)  # MSE 0.01
    assert psnr(x, x).tolist() == [PSNR_MAX_DB, PSNR_MAX_DB]


def _ssim_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al.'s SSIM for one 2-D float64 image pair, written with scipy's Gaussian filter."""
    def blur(a: np.ndarray) -> np.ndarray:  # 11x11 window, valid part
        return gaussian_filter(a, sigma=1.5, truncate=3.5)[5:-5, 5:-5]

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def test_ssim_matches_an_independent_scipy_reference() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 28, 28, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(3, 2, 28, 28, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(x, y)
    for i in range(3):
        ref = np.mean([_ssim_reference(x[i, c].numpy(), y[i, c].numpy()) for c in range(2)])
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)
    assert 0.05 < ours.mean() < 0.95


def test_ssim_properties() -> None:
    x = torch.rand(2, 3, 20, 20)
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-12)
    assert ssim(x, x.flip(-1)).tolist() == pytest.approx(ssim(x.flip(-1), x).tolist(), abs=1e-12)  # symmetric
    a, b = 0.25, 0.75  # constant images: the luminance term alone, (2ab + c1) / (a^2 + b^2 + c1)
    closed_form = (2 * a * b + 1e-4) / (a * a + b * b + 1e-4)
    score = ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)).item()
    assert score == pytest.approx(closed_form, abs=1e-9)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


# ----------------------------------------------------------------------------------------------- task


class _Unscrambler(nn.Module):
    """The oracle: applies the inverse permutation."""

    def __init__(self, perm: torch.Tensor) -> None:
        super().__init__()
        self.perm = perm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unscramble(x, self.perm)


def test_oracle_is_perfect_and_identity_model_scores_the_identity_baseline() -> None:
    split = load_split("synthetic", train=False).first(64)
    task = ShuffleTask((32, 32), permutation_seed=1)
    x = split.images.float() / 255

    oracle = task.evaluate(_Unscrambler(task.permutation), split, 25, torch.device("cpu"))
    assert oracle["psnr"] == PSNR_MAX_DB and abs(oracle["ssim"] - 1) < 1e-6

    identity = task.evaluate(nn.Identity(), split, 25, torch.device("cpu"))
    assert identity["psnr"] == pytest.approx(identity["identity_psnr"], abs=1e-9)
    assert identity["ssim"] == pytest.approx(identity["identity_ssim"], abs=1e-9)
    assert identity["identity_psnr"] == pytest.approx(psnr(task.scramble(x), x).mean().item(), rel=1e-6)
    assert identity["identity_psnr"] < identity["mean_image_psnr"]  # scrambling costs more than blind averaging
    mean_image = x.mean(0, keepdim=True).expand_as(x)
    assert identity["mean_image_psnr"] == pytest.approx(psnr(mean_image, x).mean().item(), rel=1e-5)


def test_unshuffler_maps_images_to_images_and_freezes_only_block_mixers() -> None:
    assert model_task("randmix_unshuffler_512_16") == "shuffle"
    assert model_task("randmix_convmixer_tiny") == "classification"
    x = torch.rand(2, 1, 28, 28)
    for mixing, frozen in (("full", []), ("chans", ["blocks.0.spatial", "blocks.1.spatial"]),
                           ("space", ["blocks.0.channel", "blocks.1.channel"])):
        model = create_model("randmix_unshuffler_tiny", mixing=mixing, in_chans=1)
        assert model(x).shape == x.shape
        assert model.mixing.frozen_modules == frozen
    with pytest.raises(ValueError, match="randmix shuffle train"):
        create_model("randmix_unshuffler_tiny", num_classes=10)


def test_every_shuffle_recipe_is_valid_and_sizes_its_permutation() -> None:
    shuffle_recipes = {name: cfg for name, cfg in RECIPES.items() if cfg.task == "shuffle"}
    assert len(shuffle_recipes) == 9
    for name, cfg in shuffle_recipes.items():
        task = task_for(cfg.validate())
        assert isinstance(task, ShuffleTask)
        assert cfg.recipe == name and len(task.permutation) == task.image_size[0] * task.image_size[1]
        assert model_task(cfg.model) == "shuffle"


# ----------------------------------------------------------------------------------- training + CLI


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two quick runs through the shared trainer, 1 epoch each: full by `randmix train` with a shuffle recipe,
    chans by its alias `randmix shuffle train`."""
    root = tmp_path_factory.mktemp("shuffle")
    out = {}
    for mixing, command in (("full", ["train"]), ("chans", ["shuffle", "train"])):
        out[mixing] = root / mixing
        result = runner.invoke(app, [*command, "-r", "unshuffle-quick", "-m", mixing, "-o", str(out[mixing]),
                                     "--epochs", "1", "--permutation-seed", "5", "--device", "cpu", "-q"])
        assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_tiny_model_trains_through_the_trainer_and_the_loss_drops(runs: dict[str, Path]) -> None:
    run = json.loads((runs["chans"] / "run.json").read_text())
    assert run["status"] == "finished" and run["task"]["task"] == "shuffle" and run["task"]["permutation_seed"] == 5
    trained, meta = load_model(runs["chans"])
    task = ShuffleTask.from_record(meta["extra"]["task"])
    cfg = TrainConfig.from_dict(run["config"])
    untrained, _ = cfg.build_model(task, dataset_info(cfg.dataset))  # the trainer's initialization, before any step
    untrained.eval()
    split = load_split("synthetic", train=False).first(256)
    images = split.images.float() / 255
    with torch.no_grad():
        before, after = (task.batch_loss(m, images, split.labels).item() for m in (untrained, trained))
    # The tiny network sees 2 pixels around it, so it cannot unscramble: the best it can do is the
    # best constant image, the data's mean. It closes most of the gap from its random start to that.
    best_constant = (images - images.mean()).pow(2).mean().item()
    assert best_constant < after < before
    assert after - best_constant < 0.25 * (before - best_constant)
    measured = task.evaluate(trained, split, 128, torch.device("cpu"))["psnr"]
    assert measured == pytest.approx(run["test"]["psnr"], abs=0.5)


def test_grid_png_has_the_expected_size_and_pixels(tmp_path: Path) -> None:
    black, white = torch.zeros(5, 1, 28, 28), torch.ones(5, 1, 28, 28)
    path = save_grid(tmp_path / "g.png", [("ground truth", white), ("scrambled", black), ("recon", white)], scale=3)
    assert grid_size(5, 3, (28, 28), 3) == (2 + 5 * (84 + 2), 2 + 3 * (14 + 84 + 2))
    with Image.open(path) as img:
        assert img.size == (432, 302) and img.mode == "RGB"
        second_row_cell = (2 + 86 + 40, 2 + 100 + 14 + 40)  # inside image 2 of row 2 (black)
        assert img.getpixel(second_row_cell) == (0, 0, 0)


@pytest.mark.slow
def test_cli_eval_writes_results_and_grid_and_refuses_to_overwrite(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "fashion" / "shuffle"
    args = ["shuffle", "eval", str(runs["full"]), str(runs["chans"]), "-o", str(out), "-n", "100",
            "--grid-images", "4", "--device", "cpu"]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    for mixing in ("full", "chans"):
        entry = read_result(out / f"{mixing}.json")
        assert isinstance(entry, ShuffleResult)
        assert (entry.mixing, entry.n_examples, entry.permutation_seed, entry.epochs) == (mixing, 100, 5, 1)
        assert entry.psnr > entry.identity_psnr  # even one tiny epoch beats the scrambled input
        ckpt = (runs[mixing] / "checkpoint.safetensors").resolve()  # named from the nearest folder holding it
        assert ".." not in entry.checkpoint.path and any((base / entry.checkpoint.path).resolve() == ckpt
                                                         for base in (out.resolve(), *out.resolve().parents))
        assert f"{entry.psnr:.2f}" in result.output
    with Image.open(out / "grid.png") as img:
        assert img.size == grid_size(4, 4, (32, 32), 3)  # ground truth, scrambled, two reconstructions

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exist; pass --force" in again.output


def test_cli_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    bad_loss = runner.invoke(app, ["shuffle", "train", "-r", "unshuffle-quick", "-o", str(tmp_path / "r"),
                                   "--loss", "l2"])
    assert bad_loss.exit_code == 2 and "unknown loss 'l2'; valid choices: mse, l1" in bad_loss.output
    classifier = runner.invoke(app, ["shuffle", "train", "-r", "unshuffle-quick", "-o", str(tmp_path / "r"),
                                     "--model", "randmix_convmixer_tiny"])
    assert classifier.exit_code == 2 and "is a classifier" in classifier.output
    missing = runner.invoke(app, ["shuffle", "eval", str(tmp_path / "nope"), "-o", str(tmp_path / "e")])
    assert missing.exit_code == 2 and "no checkpoint at" in missing.output
    assert not (tmp_path / "r").exists()


def test_models_command_lists_unshufflers_as_shuffle_models() -> None:
    result = runner.invoke(app, ["models", "-m", "chans", "--in-chans", "1"], terminal_width=200)
    assert result.exit_code == 0, result.output
    unshufflers = result.output.split("randmix unshufflers")[1]  # their own table, after the classifiers'
    row = next(line for line in unshufflers.splitlines() if "randmix_unshuffler_tiny" in line)
    trainable, frozen = count_parameters(create_model("randmix_unshuffler_tiny", mixing="chans", in_chans=1))
    assert f"{trainable:,}" in row and f"{frozen:,}" in row
