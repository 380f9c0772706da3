"""Datasets and the device-resident loader: order, determinism, sharding, augmentation, errors."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from randmix_bench.data import CIFAR10_JPEG_SHARED, FASHION_MNIST_DEBIAN_DIR, load_split
from randmix_bench.data_files import CIFAR10_CLASSES, decode_image
from randmix_bench.loader import RA_OPS, Augment, DeviceLoader, rand_augment


def indexed_images(n: int, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 images whose label is their own index, so a batch says where each image came from."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8), torch.arange(n)


# ------------------------------------------------------------------------------------------------ loader


def test_epoch_is_a_seeded_permutation_and_repeatable() -> None:
    images, labels = indexed_images(100)
    loader = DeviceLoader(images, labels, 32, Augment(), seed=1, device="cpu")
    assert len(loader) == 3  # the partial last batch is dropped
    first = list(loader.epoch(0))
    seen = torch.cat([y for _, y in first])
    assert len(seen) == 96 and len(seen.unique()) == 96  # every image at most once per epoch
    for x, y in first:
        assert torch.equal(x, images[y].float() / 255)  # no augmentation: the images themselves
    again = DeviceLoader(images, labels, 32, Augment(), seed=1, device="cpu")
    assert all(torch.equal(y1, y2) for (_, y1), (_, y2) in zip(again.epoch(0), first, strict=True))
    assert not torch.equal(torch.cat([y for _, y in loader.epoch(1)]), seen)  # a new order each epoch
    other_seed = DeviceLoader(images, labels, 32, Augment(), 2, "cpu")
    assert not torch.equal(torch.cat([y for _, y in other_seed.epoch(0)]), seen)


def test_crop_and_flip_move_whole_images() -> None:
    images, labels = indexed_images(256)
    pad = 2
    loader = DeviceLoader(images, labels, 256, Augment(crop_padding=pad, flip=True), seed=0, device="cpu")
    x, y = next(loader.epoch(0))
    assert x.dtype == torch.float32 and x.shape == (256, 3, 8, 8) and 0 <= x.min() and x.max() <= 1
    padded = torch.nn.functional.pad(images[y], (pad,) * 4)
    got = (x * 255).round().to(torch.uint8)
    flips, shifts = 0, set()
    for i in range(len(y)):
        matches = [(dy, dx, f) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1) for f in (False, True)
                   if torch.equal(got[i], (lambda c: c.flip(2) if f else c)(padded[i, :, dy:dy + 8, dx:dx + 8]))]
        assert matches, f"image {i} is not a crop of its padded source"
        flips += matches[0][2]
        shifts.add(matches[0][:2])
    assert 80 < flips < 176  # about half flipped
    assert len(shifts) == (2 * pad + 1) ** 2  # every offset occurs


@pytest.mark.parametrize(
    "augment",
    [Augment(crop_padding=1, flip=True), Augment(crop_padding=2, flip=True, randaugment_n=2, randaugment_m=12)],
)
def test_ddp_ranks_split_the_global_batch(augment: Augment) -> None:
    """Two ranks together see exactly the batches one process sees, augmented the same way."""
    images, labels = indexed_images(64)
    whole = DeviceLoader(images, labels, 16, augment, seed=3, device="cpu")
    ranks = [DeviceLoader(images, labels, 16, augment, seed=3, device="cpu", rank=r, world_size=2) for r in (0, 1)]
    for (x, y), (x0, y0), (x1, y1) in zip(whole.epoch(5), *(r.epoch(5) for r in ranks), strict=True):
        assert x0.shape[0] == x1.shape[0] == 8
        assert torch.equal(torch.cat([y0, y1]), y)
        torch.testing.assert_close(torch.cat([x0, x1]), x, rtol=0, atol=1e-6)


def test_randaugment_batches_stay_images() -> None:
    images, labels = indexed_images(64, size=32)
    loader = DeviceLoader(images, labels, 64, Augment(2, True, 2, 12), seed=0, device="cpu", channels_last=True)
    x, _ = next(loader.epoch(0))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert 0 <= x.min() and x.max() <= 1 and torch.isfinite(x).all()


def test_loader_rejects_bad_batch_sizes() -> None:
    images, labels = indexed_images(10)
    with pytest.raises(ValueError, match="larger than the training set"):
        DeviceLoader(images, labels, 11, Augment(), 0, "cpu")
    with pytest.raises(ValueError, match="split evenly"):
        DeviceLoader(images, labels, 5, Augment(), 0, "cpu", world_size=2)


# Colour ops differ from torchvision's by its uint8 rounding between steps; geometric ops should match,
# up to nearest-neighbour ties at exactly half a pixel.
TORCHVISION_NAMES = {
    "identity": "Identity", "shear_x": "ShearX", "shear_y": "ShearY", "translate_x": "TranslateX",
    "translate_y": "TranslateY", "rotate": "Rotate", "brightness": "Brightness", "color": "Color",
    "contrast": "Contrast", "sharpness": "Sharpness", "posterize": "Posterize", "solarize": "Solarize",
    "autocontrast": "AutoContrast", "equalize": "Equalize",
}


@pytest.mark.parametrize("channels,size", [(3, 32), (1, 28)])
def test_randaugment_ops_match_torchvision(channels: int, size: int) -> None:
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import autoaugment as tv

    m, n = 12, 8
    g = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    x8[: n // 2] = x8[: n // 2] // 3 + 60  # low contrast, so autocontrast and equalize do something
    space = tv.RandAugment(2, m)._augmentation_space(31, (size, size))
    for i, name in enumerate(RA_OPS):
        magnitudes, signed = space[TORCHVISION_NAMES[name]]
        magnitude = float(magnitudes[m]) if magnitudes.ndim else 0.0
        ref = torch.stack([tv._apply_op(img, TORCHVISION_NAMES[name], magnitude, InterpolationMode.NEAREST, None)
                           for img in x8]).float()
        ours = [rand_augment(x8.float() / 255, torch.full((1, n), i), torch.full((1, n), s), m) * 255
                for s in (1.0, -1.0)]
        diff = min(((o - ref).abs() for o in ours), key=lambda d: d.sum())  # sign conventions may differ
        if i <= RA_OPS.index("rotate"):
            assert (diff > 0).float().mean() < (0.05 if size == 28 else 1e-9), name
        else:
            assert diff.max() <= 2.0, name


# ---------------------------------------------------------------------------------------------- datasets


def test_missing_dataset_says_where_to_put_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANDMIX_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.*--data-dir") as e:
        load_split("cifar10", True, data_dir=tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"MNIST IDX"):
        load_split("mnist", False, data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_split("imagenet", False)


def test_a_failed_cifar10_download_in_train_leaves_no_data_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's downloader writes part of the archive, then the connection drops: `randmix train` says so
    in one line, and neither the data folder it would have created (nor its parents) nor the run folder is left.
    A data folder that was already there keeps exactly what it held."""
    import urllib.error

    import torchvision.datasets.cifar as cifar
    from typer.testing import CliRunner

    from randmix_bench.cli import app

    def drop_halfway(url: str, download_root: str, **kwargs: object) -> None:
        (Path(download_root) / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b" + b"\0" * 1000)
        (Path(download_root) / "cifar-10-batches-py").mkdir()
        raise urllib.error.URLError("connection reset by peer")

    monkeypatch.delenv("RANDMIX_OFFLINE", raising=False)
    monkeypatch.setattr(cifar, "download_and_extract_archive", drop_halfway)
    home = tmp_path / "home"
    for data_dir, kept in ((home / ".cache" / "randmix" / "data", []), (tmp_path / "mine", ["notes.txt"])):
        if kept:
            data_dir.mkdir()
            (data_dir / "notes.txt").write_text("mine")
        result = CliRunner().invoke(app, ["train", "-r", "quick", "--dataset", "cifar10", "--data-dir", str(data_dir),
                                          "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run")])
        assert result.exit_code == 2, result.output
        assert "download into" in result.output and "URLError: <urlopen error connection reset by peer>" in \
            result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert sorted(p.name for p in data_dir.iterdir()) == kept if kept else not home.exists()
        assert not (tmp_path / "run").exists()


def test_a_failed_mnist_download_says_why_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's MNIST downloader tries every mirror and raises one error with lines for each: the message keeps
    the first line and the last reason, on one line."""
    import torchvision.datasets.mnist as mnist

    def every_mirror_fails(self: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://a/, got:\n<urlopen error a>\n"
                           "Tried http://b/, got:\n<urlopen error b>\n")

    monkeypatch.delenv("RANDMIX_OFFLINE", raising=False)
    monkeypatch.setattr(mnist.MNIST, "download", every_mirror_fails)
    with pytest.raises(FileNotFoundError) as e:
        load_split("mnist", False, data_dir=tmp_path / "data")
    assert "\n" not in str(e.value)
    assert "RuntimeError: Error downloading train-images-idx3-ubyte.gz: ... <urlopen error b>" in str(e.value)
    assert not (tmp_path / "data").exists()


def _write_folder(root: Path, sizes: dict[str, int]) -> None:
    g = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls, count in sizes.items():
            (root / split / cls).mkdir(parents=True)
            for j in range(count):
                Image.fromarray(g.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(root / split / cls / f"{j}.png")


def test_image_folder_and_tarball_agree(tmp_path: Path) -> None:
    folder = tmp_path / "shapes"
    _write_folder(folder, {"square": 3, "circle": 2})
    with tarfile.open(tmp_path / "shapes.tar.gz", "w:gz") as tar:
        tar.add(folder / "train", arcname="train")
        tar.add(folder / "test", arcname="test")
    a = load_split(str(folder), True, cache_dir=tmp_path / "cache")
    b = load_split(str(tmp_path / "shapes.tar.gz"), True, cache_dir=tmp_path / "cache")
    assert a.images.shape == (5, 3, 6, 6) and a.info.num_classes == 2
    assert a.labels.tolist() == [0, 0, 1, 1, 1]  # classes sorted by name: circle, square
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    first = np.asarray(Image.open(folder / "train" / "circle" / "0.png")).transpose(2, 0, 1)
    assert np.array_equal(a.images[0].numpy(), first)
    Image.new("RGB", (7, 7)).save(folder / "test" / "circle" / "9.png")
    with pytest.raises(ValueError, match="differ in size"):
        load_split(str(folder), False, cache_dir=tmp_path / "cache")


CIFAR10_JPEG = next((p for p in CIFAR10_JPEG_SHARED if p.is_file()), None)


@pytest.mark.slow
@pytest.mark.skipif(CIFAR10_JPEG is None, reason="cifar10-jpeg.tar.gz is not on this machine: build it with "
                    "`randmix data cifar10-jpeg CLONE` (README: Data)")
def test_cifar10_jpeg_test_order_is_the_documented_interleaving(tmp_path: Path) -> None:
    from randmix_bench.data_files import cifar10_jpeg_test_order

    split = load_split("cifar10-jpeg", False, cache_dir=tmp_path)
    assert split.images.shape == (10000, 3, 32, 32)
    assert torch.bincount(split.labels).tolist() == [1000] * 10
    assert split.labels[:10].tolist() == [9, 8, 3, 1, 5, 2, 8, 1, 8, 3]  # pinned: must never change
    # Position i holds the file sorted i-th by sha256("0:<class>/<NNNN>.jpg"), as data.py documents.
    keys = [f"{c}/{j:04d}.jpg" for c in CIFAR10_CLASSES for j in range(1000)]
    expected = [keys[i] for i in cifar10_jpeg_test_order(keys)[:3]]
    wanted = {f"test/{k}": pos for pos, k in enumerate(expected)}
    with tarfile.open(CIFAR10_JPEG, "r|gz") as tar:
        for member in tar:
            if member.name in wanted:
                pos = wanted.pop(member.name)
                assert np.array_equal(split.images[pos].numpy(), decode_image(tar.extractfile(member).read()))  # type: ignore[union-attr]
                assert split.labels[pos] == CIFAR10_CLASSES.index(member.name.split("/")[1])
                if not wanted:
                    break
    assert not wanted
    again = load_split("cifar10-jpeg", False, cache_dir=tmp_path)  # from the cache now
    assert torch.equal(again.images, split.images) and torch.equal(again.labels, split.labels)


@pytest.mark.skipif(not FASHION_MNIST_DEBIAN_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_is_found_without_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANDMIX_DATA", str(tmp_path))  # nothing there: the Debian copy must be used
    split = load_split("fashion-mnist", False)
    assert split.images.shape == (10000, 1, 28, 28) and split.images.dtype == torch.uint8
    assert torch.bincount(split.labels).tolist() == [1000] * 10
