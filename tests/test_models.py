"""Every registered model builds through timm, runs forward, normalizes inside, and round-trips."""

from __future__ import annotations

import pytest
import timm
import torch

import randmix_bench  # noqa: F401
from randmix_bench.checkpoint import CheckpointError, load_model, save_checkpoint
from randmix_bench.models import create_model, list_models
from randmix_bench.vocab import Mixing

CLASSIFIERS = [n for n in list_models() if "unshuffler" not in n]


def test_expected_models_are_registered() -> None:
    for name in ["randmix_convmixer_256_8", "randmix_convmixer_512_16", "randmix_convmixer_tiny", "randmix_resnet18"]:
        assert name in list_models()


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("mixing", [m.value for m in Mixing])
def test_builds_and_runs_forward(name: str, mixing: str) -> None:
    model = timm.create_model(name, mixing=mixing, mixer_seed=1)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert model.pretrained_cfg["input_size"] == (3, 32, 32)


@pytest.mark.parametrize("name", ["randmix_convmixer_tiny", "randmix_resnet_tiny"])
def test_one_channel_inputs_and_other_class_counts(name: str) -> None:
    model = create_model(name, mixing="chans", in_chans=1, num_classes=7, mean=(0.3,), std=(0.3,))
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 7)


def test_normalization_is_inside_the_model() -> None:
    model = create_model("randmix_convmixer_tiny", mean=(0.2, 0.3, 0.4), std=(0.5, 0.5, 0.5)).eval()
    x = torch.rand(2, 3, 32, 32)
    expected = (x - torch.tensor([0.2, 0.3, 0.4]).view(1, 3, 1, 1)) / 0.5
    assert torch.allclose(model.normalize(x), expected)
    assert "normalize.mean" not in model.state_dict()  # from the config, not the checkpoint


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'randmix_nope'; valid choices: .*randmix_convmixer_256_8"):
        create_model("randmix_nope")


def test_pretrained_weights_do_not_exist() -> None:
    with pytest.raises(RuntimeError, match="No pretrained weights exist"):
        timm.create_model("randmix_convmixer_tiny", pretrained=True)


@pytest.mark.parametrize("mixing", ["full", "chans", "chans-smooth", "space"])
def test_checkpoint_round_trip_is_bit_exact(tmp_path, mixing: str) -> None:
    kwargs = {"mixing": mixing, "mixer_seed": 5, "in_chans": 3, "num_classes": 10}
    model = create_model("randmix_convmixer_tiny", **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # "trained" weights, different from any fresh init
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, model, "randmix_convmixer_tiny", kwargs, extra={"note": "test"})
    loaded, meta = load_model(tmp_path)
    assert meta["model"] == "randmix_convmixer_tiny" and meta["extra"] == {"note": "test"}
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(model.eval()(x), loaded(x))


def test_corrupt_and_mismatched_checkpoints_are_refused(tmp_path) -> None:
    kwargs = {"mixing": "chans"}
    path = tmp_path / "a.safetensors"
    save_checkpoint(path, create_model("randmix_convmixer_tiny", **kwargs), "randmix_convmixer_tiny", kwargs)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(truncated)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_model(tmp_path / "missing")
    from randmix_bench.checkpoint import load_state, read_checkpoint

    state, _ = read_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not match ResNet"):
        load_state(create_model("randmix_resnet_tiny"), state, path)


def test_checkpoint_bytes_are_deterministic(tmp_path) -> None:
    """Same weights and metadata, same file: leaderboard entries pin checkpoints by sha256."""
    from randmix_bench.files import sha256

    model = create_model("randmix_convmixer_tiny", mixing="chans")
    for name in ("a", "b"):
        save_checkpoint(tmp_path / f"{name}.safetensors", model, "randmix_convmixer_tiny",
                        {"mixing": "chans", "mixer_seed": 0}, extra={"train": {"seed": 1, "epochs": 2}, "task": {}})
    assert sha256(tmp_path / "a.safetensors") == sha256(tmp_path / "b.safetensors")
