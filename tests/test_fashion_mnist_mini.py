"""``fashion-mnist-mini``: the Fashion-MNIST subset bundled with the package, its provenance, the quickstart's
fallback to it, and the one-line errors for a bundle that is missing or damaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from randmix_bench import data, quickstart
from randmix_bench.cli import app
from randmix_bench.data import FASHION_MNIST_DEBIAN_DIR, IDX_FILES, dataset_info, load_split
from randmix_bench.data_files import arrays_sha256, read_idx
from randmix_bench.errors import RandmixError
from randmix_bench.fmnist_mini import PER_CLASS, build, select
from randmix_bench.robustness import EvalOptions, evaluate
from randmix_bench.vocab import Attack

MINI = "fashion-mnist-mini"
runner = CliRunner()


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine without Debian's Fashion-MNIST, a data folder or internet; returns a scratch folder."""
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "absent")
    monkeypatch.setenv("RANDMIX_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RANDMIX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RANDMIX_OFFLINE", "1")
    return tmp_path


def test_bundled_subset_loads_offline_with_the_declared_shapes_and_balance(offline: Path) -> None:
    info, full = dataset_info(MINI), dataset_info("fashion-mnist")
    assert (info.in_chans, info.image_size, info.num_classes) == (1, 28, 10)
    assert (info.mean, info.std) == (full.mean, full.std)  # normalized as full Fashion-MNIST is
    for split, per_class in PER_CLASS.items():
        s = load_split(MINI, train=split == "train")
        assert s.info is info and s.images.shape == (10 * per_class, 1, 28, 28) and s.images.dtype == torch.uint8
        assert s.labels.dtype == torch.int64 and torch.bincount(s.labels).tolist() == [per_class] * 10
    assert info.test_size == len(load_split(MINI, train=False)) == 2000
    with np.load(data.FASHION_MNIST_MINI) as z:  # original positions, ascending, within the original splits
        for split, size in (("train", 60000), ("test", 10000)):
            idx = z[f"{split}_indices"]
            assert np.all(np.diff(idx) > 0) and 0 <= idx[0] and idx[-1] < size
    first = load_split(MINI, train=False).first(500).labels
    assert torch.bincount(first, minlength=10).min() >= 30  # the test order keeps the classes mixed


@pytest.mark.slow
@pytest.mark.skipif(not FASHION_MNIST_DEBIAN_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_bundle_is_the_documented_subset_of_the_original_files(tmp_path: Path) -> None:
    with np.load(data.FASHION_MNIST_MINI) as z:
        bundle = {key: z[key] for key in z.files}
    for train, (image_file, label_file) in IDX_FILES.items():
        split = "train" if train else "test"
        images = read_idx(FASHION_MNIST_DEBIAN_DIR / image_file)
        labels = read_idx(FASHION_MNIST_DEBIAN_DIR / label_file)
        idx = bundle[f"{split}_indices"]
        assert np.array_equal(idx, select(labels, PER_CLASS[split], split))  # the seeded sha256 rule, nothing else
        assert np.array_equal(bundle[f"{split}_images"], images[idx])
        assert np.array_equal(bundle[f"{split}_labels"], labels[idx])
    rebuilt = tmp_path / "rebuilt.npz"
    assert build(FASHION_MNIST_DEBIAN_DIR, rebuilt) == data.FASHION_MNIST_MINI_SHA256 == arrays_sha256(bundle)
    with np.load(rebuilt) as z:
        assert arrays_sha256({key: z[key] for key in z.files}) == data.FASHION_MNIST_MINI_SHA256


def test_quickstart_falls_back_to_the_bundled_subset_and_says_so(offline: Path) -> None:
    dataset, line = quickstart.resolve_dataset("fashion-mnist", None)
    assert dataset == MINI
    assert line.startswith("data: fashion-mnist-mini (the subset of Fashion-MNIST bundled with randmix-bench: "
                           "10,000 train / 2,000 test images)")
    assert "Full Fashion-MNIST is not here" in line and "fashion-mnist not found" in line
    with pytest.raises(FileNotFoundError, match="mnist not found"):
        quickstart.resolve_dataset("mnist", None)  # only the default falls back
    # Through the CLI: the data line comes before anything runs (here a too-large -n stops it at once).
    result = runner.invoke(app, ["quickstart", "--out", str(offline / "qs"), "-n", "5000"], terminal_width=300)
    assert result.exit_code == 2
    assert "data: fashion-mnist-mini (the subset of Fashion-MNIST bundled" in result.stdout
    assert "-n 5000 is more than the 2,000 fashion-mnist-mini test points" in result.stderr


@pytest.mark.slow
def test_quickstart_output_is_honest_about_each_data_source(offline: Path) -> None:
    folder = offline / "shapes"
    for split, count in (("train", 2), ("test", 1)):
        (folder / split / "square").mkdir(parents=True)
        for j in range(count):
            Image.new("RGB", (4, 4)).save(folder / split / "square" / f"{j}.png")
    assert quickstart.resolve_dataset("synthetic", None) == ("synthetic", (
        "data: synthetic (seeded noise around 10 random class templates, not real images: "
        "2,048 train / 512 test images)"))
    assert quickstart.resolve_dataset(str(folder), None)[1] == f"data: {folder} (2 train / 1 test images)"
    assert "say nothing about spatial mixing on real images" in quickstart.scope("synthetic")
    assert "fully learned one on real images" not in quickstart.scope("synthetic")
    assert "real images (fashion-mnist-mini), trained on 1/6" in quickstart.scope(MINI)
    assert "not comparable with full Fashion-MNIST results" in quickstart.scope(MINI)
    assert "not comparable" not in quickstart.scope("fashion-mnist")


@pytest.mark.skipif(not FASHION_MNIST_DEBIAN_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_quickstart_uses_full_fashion_mnist_when_it_is_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANDMIX_DATA", str(tmp_path))
    monkeypatch.setenv("RANDMIX_OFFLINE", "1")
    assert quickstart.resolve_dataset("fashion-mnist", None) == (
        "fashion-mnist", "data: fashion-mnist (Fashion-MNIST: 60,000 train / 10,000 test images)")


def _flip_middle_byte(path: Path, good: bytes) -> None:
    middle = len(good) // 2
    path.write_bytes(good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1:])


def _other_content(path: Path, good: bytes) -> None:
    np.savez(path, train_images=np.zeros((10, 28, 28), np.uint8), train_labels=np.arange(10, dtype=np.uint8))


@pytest.mark.parametrize("damage, message", [
    (lambda path, good: None, "is missing"),
    (lambda path, good: path.write_bytes(good[: len(good) // 2]), "is damaged (BadZipFile"),
    (_flip_middle_byte, "is damaged"),
    (lambda path, good: path.write_bytes(b"not a zip"), "is damaged"),
    (_other_content, "holds other data than this version ships"),
], ids=["missing", "truncated", "flipped-byte", "not-a-zip", "other-content"])
def test_missing_or_damaged_bundle_is_a_one_line_error(damage, message: str, offline: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = offline / "fashion-mnist-mini.npz"
    damage(path, data.FASHION_MNIST_MINI.read_bytes())
    monkeypatch.setattr(data, "FASHION_MNIST_MINI", path)
    with pytest.raises(RandmixError) as e:
        load_split(MINI, train=True)
    assert str(e.value).startswith(f"fashion-mnist-mini's bundled file {path} {message}")
    result = runner.invoke(app, ["quickstart", "--out", str(offline / "qs")], terminal_width=400)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output
    assert lines[0].endswith("; restore fashion-mnist-mini.npz, which ships with randmix-bench: reinstall the package, "
                             "or rebuild the file from the four Fashion-MNIST IDX .gz files with "
                             "`python -m randmix_bench.fmnist_mini`")
    assert not (offline / "qs").exists()


@pytest.mark.slow
def test_train_and_eval_run_on_the_subset_and_label_results_with_it_alone(offline: Path) -> None:
    run = offline / "run"
    trained = runner.invoke(app, ["train", "-r", "quick", "--dataset", MINI, "--epochs", "1", "--out", str(run)])
    assert trained.exit_code == 0, trained.output
    assert json.loads((run / "run.json").read_text())["config"]["dataset"] == MINI
    output = evaluate(run, MINI, EvalOptions(attack=Attack.NONE, n_examples=8, device="cpu", out=offline / "mini.json"))
    assert output.result.dataset == output.result.randmix.dataset == MINI
    refused = runner.invoke(app, ["eval", str(run), "-d", "fashion-mnist", "--attack", "none", "--n-examples", "8",
                                  "--out", str(offline / "full.json")], terminal_width=400)
    assert refused.exit_code == 2 and not (offline / "full.json").exists()
    assert refused.stderr.strip().endswith("trained on fashion-mnist-mini (the bundled subset); evaluate it with "
                                           "--dataset fashion-mnist-mini, so that its results are not labelled "
                                           "fashion-mnist")


@pytest.mark.slow
def test_the_builder_has_help_and_never_replaces_the_bundle_unless_named(tmp_path: Path) -> None:
    import subprocess
    import sys

    from randmix_bench.files import sha256

    before = sha256(data.FASHION_MNIST_MINI)
    run = [sys.executable, "-m", "randmix_bench.fmnist_mini"]
    cwd = Path(data.__file__).parents[1]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=cwd)
    assert shown.returncode == 0 and "--out" in shown.stdout
    bare = subprocess.run(run, capture_output=True, text=True, cwd=cwd)
    assert bare.returncode == 2 and "required: --out" in bare.stderr
    empty = subprocess.run([*run, str(tmp_path), "--out", str(tmp_path / "x.npz")], capture_output=True, text=True,
                           cwd=cwd)
    assert empty.returncode == 2 and "has no train-images-idx3-ubyte.gz" in empty.stderr
    assert not (tmp_path / "x.npz").exists() and sha256(data.FASHION_MNIST_MINI) == before
