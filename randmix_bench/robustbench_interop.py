"""RobustBench 1.1.1 interop: our checkpoints in its model zoo, its ``benchmark()`` on PyPI's AutoAttack.

Three small adapters, none of which forks robustbench:

- :func:`install_autoattack_shim`: robustbench's ``eval`` module does ``from autoattack import
  AutoAttack`` and uses the pre-0.2 API (``norm``/``eps`` positional-or-keyword, ``attacks_to_run=``,
  ``run_standard_evaluation(x, y, bs=...)`` returning only ``x_adv``). PyPI ships AutoAttack as
  ``pyautoattack`` with a keyword-only API returning ``(x_adv, y_adv)``. The shim registers modules
  ``autoattack`` and ``autoattack.*`` in ``sys.modules`` whose ``AutoAttack`` is pyautoattack's with the
  old signature; it must run before ``robustbench.eval`` is imported.
- :func:`register_checkpoint`: adds a randmix checkpoint to robustbench's model-zoo dicts and writes its
  weights where ``robustbench.utils.load_model(name, model_dir=..., dataset=..., threat_model=...)``
  looks first, so that call rebuilds our model locally, with no download.
- :func:`local_test_set`: robustbench loads CIFAR test sets through torchvision, which downloads; this
  context manager makes its loader return the first points of one of our :class:`ImageSplit`.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pyautoattack
import torch
from torch import nn

from randmix_bench.checkpoint import read_checkpoint
from randmix_bench.data import ImageSplit
from randmix_bench.errors import RandmixError
from randmix_bench.files import atomic_path, sha256
from randmix_bench.models import create_model
from randmix_bench.tensors import to_unit

__all__ = ["ShimAutoAttack", "install_autoattack_shim", "register_checkpoint", "local_test_set"]

SHIM_SUBMODULES = ("state", "autopgd_base", "fab_pt", "square", "checks", "other_utils")
STATE_PREFIX = "module.model."  # see register_checkpoint


class ShimAutoAttack(pyautoattack.AutoAttack):
    """pyautoattack's ``AutoAttack`` behind the pre-0.2 ``autoattack.AutoAttack`` signature.

    ``default_seed`` replaces ``seed=None`` (which AutoAttack turns into the clock): robustbench's
    ``benchmark()`` passes no seed, so without it two runs of the same evaluation differ."""

    default_seed: int | None = None

    def __init__(self, model: nn.Module, norm: str = "Linf", eps: float = 0.3, seed: int | None = None,
                 verbose: bool = True, attacks_to_run: Sequence[str] = (), version: str = "standard",
                 is_tf_model: bool = False, device: str | torch.device = "cuda", log_path: str | None = None) -> None:
        if is_tf_model:
            raise NotImplementedError("pyautoattack evaluates PyTorch models only")
        super().__init__(model, attacks=list(attacks_to_run) or None, device=device, eps=eps, norm=norm,
                         seed=self.default_seed if seed is None else seed, version=version)
        self.verbose = verbose
        if log_path is not None:
            self.logger.addHandler(logging.FileHandler(log_path))

    def run_standard_evaluation(self, x_orig: torch.Tensor, y_orig: torch.Tensor, bs: int = 250,
                                return_labels: bool = False, state_path: str | Path | None = None) -> Any:
        x_adv, y_adv = super().run_standard_evaluation(x_orig, y_orig, batch_size=bs,
                                                       state_path=None if state_path is None else Path(state_path))
        return (x_adv, y_adv) if return_labels else x_adv

    def run_standard_evaluation_individual(self, x_orig: torch.Tensor, y_orig: torch.Tensor, bs: int = 250,
                                           return_labels: bool = False) -> dict[str, Any]:
        adv = super().run_standard_evaluation_individual(x_orig, y_orig, batch_size=bs)
        return adv if return_labels else {k: x for k, (x, _) in adv.items()}


def install_autoattack_shim(seed: int | None = None) -> ModuleType:
    """Make ``import autoattack`` give the old API over pyautoattack; returns the ``autoattack`` module.

    A real ``autoattack`` package, if installed, is left alone (and ``seed`` does not apply to it).
    ``seed`` pins the seed AutoAttack uses when its caller gives none (see :class:`ShimAutoAttack`)."""
    current = sys.modules.get("autoattack")
    if current is None and importlib.util.find_spec("autoattack") is not None:
        return importlib.import_module("autoattack")
    if current is not None and getattr(current, "AutoAttack", None) is not ShimAutoAttack:
        return current
    shim = current or ModuleType("autoattack", "pyautoattack behind the pre-0.2 autoattack API (randmix_bench shim)")
    shim.AutoAttack = ShimAutoAttack  # type: ignore[attr-defined]
    shim.__version__ = pyautoattack.__version__  # type: ignore[attr-defined]
    ShimAutoAttack.default_seed = seed
    sys.modules["autoattack"] = shim
    for name in SHIM_SUBMODULES:
        module = importlib.import_module(f"pyautoattack.{name}")
        setattr(shim, name, module)
        sys.modules[f"autoattack.{name}"] = module
    return shim


def _robustbench_keys(dataset: str, threat_model: str) -> tuple[Any, Any]:
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    try:
        return BenchmarkDataset(dataset), ThreatModel(threat_model)
    except ValueError:
        raise RandmixError(f"robustbench has no leaderboard {dataset}/{threat_model}; datasets: "
                         f"{', '.join(d.value for d in BenchmarkDataset)}; threat models: Linf, L2") from None


def register_checkpoint(checkpoint: str | Path, name: str, *, dataset: str = "cifar10", threat_model: str = "Linf",
                        model_dir: str | Path = "./models") -> Path:
    """Put a randmix checkpoint into robustbench's model zoo under ``name``; returns the weights file.

    The zoo entry rebuilds the model from the checkpoint's recipe; the weights go to
    ``<model_dir>/<dataset>/<threat_model>/<name>.pt``, the file ``load_model`` reads before it would
    download. robustbench strips the first 7 or 6 characters of any key containing ``module.`` or
    ``model.`` (its ``rm_substr_from_state_dict``), so every key is stored with the prefix
    ``module.model.``, which those two passes remove exactly, whatever the model's own key names.
    ``dataset`` is the robustbench leaderboard (cifar10, cifar100, imagenet) the entry is filed under;
    its number of classes must match the model's."""
    from robustbench.model_zoo import model_dicts
    from robustbench.utils import DATASET_CLASSES

    rb_dataset, rb_threat = _robustbench_keys(dataset, threat_model)
    state, meta = read_checkpoint(checkpoint)
    model_name, model_kwargs = meta["model"], meta["model_kwargs"]
    num_classes = create_model(model_name, **model_kwargs).num_classes
    if num_classes != DATASET_CLASSES[rb_dataset]:
        raise RandmixError(f"{checkpoint} predicts {num_classes} classes but robustbench's {dataset} "
                           f"has {DATASET_CLASSES[rb_dataset]}")

    def build() -> nn.Module:
        return create_model(model_name, **model_kwargs)

    path = Path(model_dir) / rb_dataset.value / rb_threat.value / f"{name}.pt"
    with atomic_path(path) as tmp:
        torch.save({STATE_PREFIX + k: v for k, v in state.items()}, tmp)
    model_dicts[rb_dataset][rb_threat][name] = {"model": build, "gdrive_id": f"randmix-local:{sha256(path)}"}
    return path


@contextmanager
def local_test_set(split: ImageSplit, dataset: str = "cifar10") -> Iterator[None]:
    """Within the block, robustbench's clean-data loader for ``dataset`` returns ``split``'s first
    ``n_examples`` points as float [0, 1] tensors (what torchvision's ``ToTensor`` gives), in order."""
    from robustbench import data as rb_data

    rb_dataset, _ = _robustbench_keys(dataset, "Linf")

    def load(n_examples: int | None, data_dir: str, transforms_test: Callable) -> tuple[torch.Tensor, torch.Tensor]:
        points = split.first(n_examples) if n_examples is not None else split
        return to_unit(points.images), points.labels

    loaders = rb_data._clean_dataset_loaders
    original = loaders[rb_dataset]
    loaders[rb_dataset] = load
    try:
        yield
    finally:
        loaders[rb_dataset] = original
