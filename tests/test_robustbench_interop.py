"""RobustBench 1.1.1 interop: the ``autoattack`` shim, our checkpoints in its model zoo, and its own
``benchmark()`` agreeing exactly with our harness on the same model and points.

robustbench reads CIFAR-10 through torchvision, which cannot download here; :func:`local_test_set`
hands its loader our ``synthetic`` test points instead (3x32x32, 10 classes, like CIFAR-10), so the
comparison runs robustbench's real ``benchmark()`` code on data we control.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pyautoattack
import pytest
import torch
from pyautoattack.autoattack import AutoAttack as PyAutoAttack

from randmix_bench.checkpoint import load_model, save_checkpoint
from randmix_bench.data import load_split
from randmix_bench.models import create_model
from randmix_bench.robustbench_interop import (
    ShimAutoAttack,
    install_autoattack_shim,
    local_test_set,
    register_checkpoint,
)
from randmix_bench.robustness import _set_apgd_iterations, make_attack_config, robust_accuracy
from randmix_bench.threat import ThreatModel

MODEL = "randmix_convmixer_tiny"  # conftest's train_tiny_checkpoint trains this one

N = 16
EPS = 8 / 255
FAST = dict(n_iter=10, n_queries=200)  # AutoAttack's budgets, shrunk so that CPU tests stay fast


@pytest.fixture(autouse=True)
def shim() -> None:
    """Importing robustbench imports ``autoattack``, so the shim goes first (README: RobustBench interop); every test
    installs it, so that none passes only because another ran before it."""
    install_autoattack_shim(seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory,
               train_tiny_checkpoint: Callable[..., Path]) -> Path:
    return train_tiny_checkpoint(tmp_path_factory.mktemp("runs") / "tiny" / "checkpoint.safetensors")


@pytest.fixture
def fast_autoattack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every AutoAttack built from here on (robustbench's through the shim, and ours) gets the smaller
    ``FAST`` budgets after its version's setup; both sides build theirs through this one class, so they
    still run the same attacks and the comparison stays exact."""
    set_version = PyAutoAttack._set_version

    def shrunk(self: PyAutoAttack, version: str = "standard") -> None:
        set_version(self, version)
        _set_apgd_iterations(self.apgd, FAST["n_iter"])
        _set_apgd_iterations(self.apgd_targeted, FAST["n_iter"])
        self.fab.n_iter, self.square.n_queries = FAST["n_iter"], FAST["n_queries"]

    monkeypatch.setattr(PyAutoAttack, "_set_version", shrunk)


@pytest.mark.slow
def test_shim_gives_the_old_autoattack_api(checkpoint: Path, tmp_path: Path) -> None:
    install_autoattack_shim(seed=0)
    import autoattack
    from autoattack.state import EvaluationState

    assert autoattack.AutoAttack is ShimAutoAttack and EvaluationState is pyautoattack.state.EvaluationState
    model, _ = load_model(checkpoint)
    split = load_split("synthetic", train=False).first(8)
    x, y = split.images.float() / 255, split.labels

    def adversary(cls: type, **kwargs: object) -> PyAutoAttack:
        aa = cls(model, **kwargs)
        aa.apgd.n_restarts = 1
        _set_apgd_iterations(aa.apgd, 5)
        return aa

    old = adversary(autoattack.AutoAttack, norm="Linf", eps=EPS, version="custom", attacks_to_run=["apgd-ce"],
                    device="cpu")
    x_adv = old.run_standard_evaluation(x, y, bs=4)  # the old API: bs=, returns x_adv only, seed pinned by the shim
    new = adversary(PyAutoAttack, norm="Linf", eps=EPS, version="custom", attacks=["apgd-ce"], device="cpu", seed=0)
    assert torch.equal(x_adv, new.run_standard_evaluation(x, y, batch_size=4)[0])
    state = tmp_path / "aa-state.json"
    x_adv2, y_adv = old.run_standard_evaluation(x, y, bs=4, return_labels=True, state_path=str(state))
    assert torch.equal(x_adv2, x_adv) and y_adv.shape == y.shape
    assert set(EvaluationState.from_disk(state).run_attacks) == {"apgd-ce"}  # state_path= is passed through


@pytest.mark.slow
def test_registered_checkpoint_loads_through_robustbench_without_download(checkpoint: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import robustbench.utils

    def no_download(*args: object) -> None:
        raise AssertionError("robustbench tried to download")

    monkeypatch.setattr(robustbench.utils, "download_gdrive_new", no_download)
    weights = register_checkpoint(checkpoint, "Randmix2025Tiny", dataset="cifar10", threat_model="Linf",
                                  model_dir=tmp_path)
    assert weights == tmp_path / "cifar10" / "Linf" / "Randmix2025Tiny.pt"
    loaded = robustbench.utils.load_model("Randmix2025Tiny", model_dir=tmp_path, dataset="cifar10", threat_model="Linf")
    ours, _ = load_model(checkpoint)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert not loaded.training and torch.equal(loaded(x), ours(x))

    other = tmp_path / "hundred.safetensors"
    save_checkpoint(other, create_model(MODEL, num_classes=100), MODEL, {"num_classes": 100})
    with pytest.raises(ValueError, match="predicts 100 classes but robustbench's cifar10 has 10"):
        register_checkpoint(other, "Wrong", dataset="cifar10", model_dir=tmp_path)
    with pytest.raises(ValueError, match="robustbench has no leaderboard synthetic/Linf"):
        register_checkpoint(checkpoint, "Wrong", dataset="synthetic", model_dir=tmp_path)


@pytest.mark.slow
def test_robustbench_benchmark_and_our_harness_agree_exactly(
    checkpoint: Path, tmp_path: Path, fast_autoattack: None
) -> None:
    install_autoattack_shim(seed=0)  # robustbench passes AutoAttack no seed; ours uses seed 0
    from robustbench.eval import benchmark

    register_checkpoint(checkpoint, "Randmix2025Tiny", model_dir=tmp_path)
    import robustbench.utils

    model = robustbench.utils.load_model("Randmix2025Tiny", model_dir=tmp_path, dataset="cifar10", threat_model="Linf")
    split = load_split("synthetic", train=False)
    batch_size = 8
    with local_test_set(split):
        clean, robust = benchmark(model, n_examples=N, dataset="cifar10", threat_model="Linf", eps=EPS,
                                  batch_size=batch_size, device=torch.device("cpu"))
    points = split.first(N)
    ours = robust_accuracy(load_model(checkpoint)[0], points.images, points.labels,
                      make_attack_config(threat=ThreatModel.parse("Linf", "8/255"), batch_size=batch_size, seed=0))
    assert ours.per_attack.keys() == {"apgd-ce", "apgd-t", "fab-t", "square"}  # AutoAttack standard's attacks
    assert (ours.clean_acc, ours.robust_acc) == (clean, robust)
    assert 0 < robust < clean  # attacks broke some points and some survived all four


def test_local_test_set_restores_robustbench_loader() -> None:
    from robustbench import data as rb_data
    from robustbench.model_zoo.enums import BenchmarkDataset

    original = rb_data._clean_dataset_loaders[BenchmarkDataset.cifar_10]
    split = load_split("synthetic", train=False)
    with local_test_set(split):
        x, y = rb_data.load_clean_dataset(BenchmarkDataset.cifar_10, 5, "./data", None)
        assert torch.equal(x, split.images[:5].float() / 255) and torch.equal(y, split.labels[:5])
        with pytest.raises(ValueError, match="larger than"):
            rb_data.load_clean_dataset(BenchmarkDataset.cifar_10, len(split) + 1, "./data", None)
    assert rb_data._clean_dataset_loaders[BenchmarkDataset.cifar_10] is original
    assert "autoattack" not in sys.modules or sys.modules["autoattack"].AutoAttack is ShimAutoAttack
