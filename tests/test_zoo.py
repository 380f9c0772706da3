"""Published models by name, and through timm alone: each family evaluates at its published number.

``timm.create_model(<model>.<dataset tag>, checkpoint_path=<published .safetensors>)`` with the input pipeline
``timm.data.resolve_data_config`` + ``create_transform`` gives (bit for bit the predictions of) the published clean
accuracy on the entry's own test points; the unshuffler gives the same reconstructions as randmix's loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import timm.data
import torch
from PIL import Image

import randmix_bench
from randmix_bench.checkpoint import load_model as load_checkpoint
from randmix_bench.data import available_locally, dataset_info, load_split
from randmix_bench.errors import RandmixError
from randmix_bench.zoo import published

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
PUBLISHED = {p.name: p for p in published(LEADERBOARDS)}


def _timm_inputs(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """uint8 test images as PIL images through timm's own eval pipeline for ``model``."""
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    mode = "L" if images.shape[1] == 1 else "RGB"
    return torch.stack([transform(Image.fromarray(img.permute(1, 2, 0).squeeze(-1).numpy(), mode)) for img in images])


@pytest.mark.parametrize("name", ["small-convmixer-fmnist-chans-smooth-s0-linf", "small-resnet-fmnist-space-s1-linf",
                                  "small-convmixer-cifar-chans-s0-linf"])
def test_timm_alone_evaluates_a_published_classifier_at_its_published_clean_accuracy(name: str) -> None:
    entry = PUBLISHED[name]
    if not available_locally(entry.dataset):
        pytest.skip(f"{entry.dataset} is not on this machine: put {dataset_info(entry.dataset).where}")
    model = timm.create_model(entry.timm_name, checkpoint_path=str(entry.checkpoint)).eval()
    split = load_split(entry.dataset, False).first(entry.entry.randmix.n_examples)
    with torch.no_grad():
        correct = (model(_timm_inputs(model, split.images)).argmax(1) == split.labels).sum().item()
    assert correct == round(entry.entry.randmix.clean_acc * len(split))


def test_timm_alone_loads_a_published_unshuffler_as_randmix_does() -> None:
    entry = PUBLISHED["small-unshuffle-fmnist-chans-s0"]
    model = timm.create_model(entry.timm_name, checkpoint_path=str(entry.checkpoint)).eval()
    ours, _ = load_checkpoint(entry.checkpoint)
    images = load_split("fashion-mnist-mini", False).images[:16]  # the same 28x28 grayscale format
    with torch.no_grad():
        assert torch.equal(model(_timm_inputs(model, images)), ours(images.float() / 255))


def test_load_model_by_name_is_the_checkpoint_with_its_datasets_config() -> None:
    model = randmix_bench.load_model("small-convmixer-fmnist-full-s0-linf", leaderboard_dir=LEADERBOARDS)
    assert model.pretrained_cfg["input_size"] == (1, 28, 28) and model.pretrained_cfg["num_classes"] == 10
    assert not model.training
    with pytest.raises(RandmixError, match="unknown published model 'nope'"):
        randmix_bench.load_model("nope", leaderboard_dir=LEADERBOARDS)


def test_a_tampered_checkpoint_is_refused_by_name(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(LEADERBOARDS, tmp_path / "lb")
    ckpt = tmp_path / "lb" / "checkpoints" / "small" / "small-convmixer-fmnist-full-s0.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:-1] + b"\0")
    with pytest.raises(RandmixError, match="does not hash to the sha256"):
        randmix_bench.load_model("small-convmixer-fmnist-full-s0-linf", leaderboard_dir=tmp_path / "lb")
