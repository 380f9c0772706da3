# ruff: noqa: E402  (OpenMP's wait policy must be set before torch is imported)
"""Suite-wide settings, and the helpers several test modules share, as fixtures (no test module imports another).

Tiny models on a small CPU run fastest, and most predictably, on one thread. The helpers build real files the
way the project's own commands would: checkpoints, result records, and hand edits of result files.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from randmix_bench.threads import prefer_passive_waiting

prefer_passive_waiting()  # before torch loads libgomp: the CLI tests' threads must not spin on a busy machine

import torch
from PIL import Image

from randmix_bench import train as train_module
from randmix_bench.checkpoint import save_checkpoint
from randmix_bench.data import dataset_info, load_split
from randmix_bench.models import create_model, list_models
from randmix_bench.recipes import TrainConfig, get_recipe
from randmix_bench.results import RobustnessResult, ShuffleResult, pct
from randmix_bench.robustness import ProgressReporter
from randmix_bench.run_folder import RESUME_NAME
from randmix_bench.tasks import task_for
from randmix_bench.vocab import Mixing

torch.set_num_threads(1)

TINY_MODEL = "randmix_convmixer_tiny"


def bomb_png(path: Path, width: int, height: int) -> None:
    """A 4 x 4 PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb's header)."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data[12:29]  # b"IHDR" + width, height, depth, colour, ...
    ihdr[4:12] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[12:29], data[29:33] = ihdr, zlib.crc32(bytes(ihdr)).to_bytes(4, "big")
    path.write_bytes(bytes(data))


def _train_tiny_checkpoint(path: Path, *, mixing: str = "chans", steps: int = 60, seed: int = 0) -> Path:
    """Train ``randmix_convmixer_tiny`` with AdamW on synthetic data for a few seconds and save it at ``path``:
    trained (not random), so clean accuracy is high and robust accuracy depends on eps, which is what the
    robustness tests need to show that attacks, resume and interop change and keep the right numbers."""
    cfg = get_recipe("quick").override(mixing=Mixing.parse(mixing), seed=seed)  # TINY_MODEL on the synthetic data
    train = load_split(cfg.dataset, train=True)
    task = task_for(cfg)
    model, kwargs = cfg.build_model(task, train.info)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(train), (128,), generator=generator)
        loss = task.batch_loss(model, train.images[idx].float() / 255, train.labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # {"train": {"seed": ...}}: where randmix train keeps its seed
    save_checkpoint(path, model.eval(), TINY_MODEL, kwargs, {"train": {"seed": seed}})
    return path


def _save_classifier(path: Path, mixing: str, seed: int) -> Path:
    torch.manual_seed(seed)
    kwargs = {"mixing": mixing, "mixer_seed": seed, "in_chans": 3, "num_classes": 10}
    save_checkpoint(path, create_model(TINY_MODEL, **kwargs), TINY_MODEL, kwargs,
                    {"train": {"seed": seed}})  # where randmix train keeps its seed
    return path


class Killed(Exception):
    """Stands for the process dying right after an epoch's resume state hit the disk."""


def _train_killed_after(epochs_done: int, cfg: TrainConfig, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Train ``cfg`` into ``out`` and die right after epoch ``epochs_done``'s resume state is saved."""
    save = train_module.save_resume_state

    def save_then_die(out_: Path, *args: Any) -> None:
        save(out_, *args)
        if len(args[4]) == epochs_done:  # args[4]: the history so far
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "save_resume_state", save_then_die)
        with pytest.raises(Killed):
            train_module.train(cfg, out, device="cpu")
    assert torch.load(out / RESUME_NAME, weights_only=True)["history"][-1]["epoch"] == epochs_done


def _digest(text: str) -> str:
    """A stand-in checkpoint sha256 as results record one (64 hex digits), distinct per ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()


def _edit_result(path: Path, change: dict) -> None:
    """Set (or, for None, delete) dotted fields of a result file."""
    data = json.loads(path.read_text())
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = data
        for p in parents:
            node = node[p]
        if value is None:
            del node[key]
        else:
            node[key] = value
    path.write_text(json.dumps(data))


def _save_unshuffler(run: Path, mixing: str) -> Path:
    """An untrained tiny unshuffler saved as a run folder, as the trainer would save it after 0 epochs."""
    cfg: TrainConfig = get_recipe("unshuffle-quick").override(mixing=Mixing.parse(mixing))
    task = task_for(cfg)
    model, kwargs = cfg.build_model(task, dataset_info(cfg.dataset))
    extra = {"train": cfg.to_dict(), "task": task.config(), "epochs_done": 0}
    save_checkpoint(run / "checkpoint.safetensors", model, cfg.model, kwargs, extra=extra)
    return run


class _InterruptAfter:
    """A progress reporter that kills the evaluation after ``batches`` batches, as Ctrl-C would."""

    def __init__(self, batches: int) -> None:
        self.left = batches

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, points: int, robust_acc: float) -> None:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


PASSED = {"passed": True, "large_eps": 0.5, "large_eps_robust_acc": 0.0}
PROVENANCE = {"device": "cpu", "date": "2026-01-01T00:00:00Z", "wall_time_s": 1.0, "versions": {}}


def _robust_result(mixing: str, train_seed: int | None, clean: float, robust_acc: float, *, sigma: float = 0.0,
           full_test: float | None = None, eps: float = 8 / 255, sanity: dict | None = PASSED,
           n: int = 10_000, training: tuple[str, int] | None = None) -> RobustnessResult:
    """A validated robustness result with the given numbers (as ``randmix eval`` would write it); eps is written with
    4 decimals, and its value is what that text says (a result's eps string and eps_value must agree)."""
    eps = float(f"{eps:.4f}")
    return RobustnessResult.model_validate({
        "name": f"{mixing}-{sigma:g}-{train_seed}", "dataset": "cifar10", "architecture": "convmixer",
        "eps": f"{eps:.4f}",
        "clean_acc": pct(clean), "autoattack_acc": pct(robust_acc),
        "randmix": {"model": "convmixer", "mixing": mixing, "mixer_seed": 0, "smooth_sigma": sigma,
                    "train_seed": train_seed, "dataset": "cifar10", "threat_model": "Linf", "eps_value": eps,
                    "n_examples": n, "attack": {"attack": "autoattack", "norm": "Linf", "eps": eps},
                    "clean_acc": clean, "robust_acc": robust_acc, "clean_acc_full_test": full_test,
                    "params_trainable": 1, "params_frozen": 1, "provenance": PROVENANCE, "sanity": sanity,
                    "train_recipe": None if training is None else training[0],
                    "train_epochs": None if training is None else training[1],
                    "checkpoint": {"path": "c.safetensors", "sha256": _digest(f"{mixing}{sigma}{train_seed}{n}")}}})


def _shuffle_result(train_seed: int, ssim: float, psnr: float, mean_image: tuple[float, float] | None = (20.0, 0.3),
            dataset: str = "cifar10") -> ShuffleResult:
    return ShuffleResult.model_validate({
        "name": f"s{train_seed}", "model": "unshuffler", "mixing": "chans", "mixer_seed": 0, "smooth_sigma": 0.0,
        "train_seed": train_seed, "permutation_seed": 0, "dataset": dataset, "n_examples": 100, "loss": "mse",
        "epochs": 10, "psnr": psnr, "ssim": ssim, "identity_psnr": 10.0, "identity_ssim": 0.1,
        "mean_image_psnr": None if mean_image is None else mean_image[0],
        "mean_image_ssim": None if mean_image is None else mean_image[1],
        "params_trainable": 1, "params_frozen": 1, "provenance": PROVENANCE,
        "checkpoint": {"path": "c.safetensors", "sha256": _digest(f"s{train_seed}")}})


SMALL_MODELS = ("_tiny", "_small")  # the model names whose tests stay in the fast run


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test case of a model larger than the tiny and small ones is ``slow`` (up to seconds each on a 2-core CPU):
    the default run checks each model contract on the small models, the whole suite on every model."""
    models = set(list_models())
    for item in items:
        params = getattr(item, "callspec", None)
        names = [v for v in params.params.values() if isinstance(v, str)] if params else []
        if any(v in models and not v.endswith(SMALL_MODELS) for v in names):
            item.add_marker(pytest.mark.slow)


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def train_tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``train_tiny_checkpoint(path, mixing=, steps=, seed=)``: conftest's trained tiny checkpoint at ``path``. Each
    setting is trained once per session (training is deterministic) and copied to every path asked for."""
    trained: dict[tuple[str, int, int], Path] = {}

    def copy_of(path: Path, *, mixing: str = "chans", steps: int = 60, seed: int = 0) -> Path:
        key = (mixing, steps, seed)
        if key not in trained:
            trained[key] = _train_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "checkpoint.safetensors",
                                                  mixing=mixing, steps=steps, seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trained[key], path)
        return path

    return copy_of


@pytest.fixture(scope="session")
def interrupt_after() -> Callable[[int], ProgressReporter]:
    """``interrupt_after(n)``: a progress reporter that raises KeyboardInterrupt at the n-th attacked batch."""
    return _InterruptAfter


@pytest.fixture(scope="session")
def save_classifier() -> Callable[[Path, str, int], Path]:
    """An untrained tiny classifier saved as a checkpoint that records its training seed."""
    return _save_classifier


@pytest.fixture(scope="session")
def save_unshuffler() -> Callable[[Path, str], Path]:
    return _save_unshuffler


@pytest.fixture(scope="session")
def train_killed_after() -> Callable[..., None]:
    return _train_killed_after


@pytest.fixture(scope="session")
def edit_result() -> Callable[[Path, dict], None]:
    return _edit_result


@pytest.fixture(scope="session")
def robust_result() -> Callable[..., RobustnessResult]:
    return _robust_result


@pytest.fixture(scope="session")
def shuffle_result() -> Callable[..., ShuffleResult]:
    return _shuffle_result
