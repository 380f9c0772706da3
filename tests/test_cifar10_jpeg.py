"""cifar10-jpeg from its public source: the content digest, the builder, and its refusals."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from randmix_bench import cifar10_jpeg
from randmix_bench.cifar10_jpeg import CONTENT_SHA256, archive_members, build, content_digest
from randmix_bench.cli import app
from randmix_bench.data import CIFAR10_JPEG_SHARED, load_split

ARCHIVE = next((p for p in CIFAR10_JPEG_SHARED if p.is_file()), None)
runner = CliRunner()


def _clone(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


FILES = {"train/cat/0000.jpg": b"a", "train/dog/0000.jpg": b"bb", "test/cat/0000.jpg": b"c", "README.md": b"x"}


def test_the_digest_is_of_names_and_bytes_in_sorted_order() -> None:
    a = content_digest([("b", b"1"), ("a", b"2")])
    assert a == content_digest([("a", b"2"), ("b", b"1")])
    assert a != content_digest([("a", b"1"), ("b", b"2")])
    assert content_digest([("a", b"12")]) != content_digest([("a1", b"2")])  # the size separates name and bytes


@pytest.mark.slow
@pytest.mark.skipif(ARCHIVE is None, reason="cifar10-jpeg.tar.gz is not on this machine: build it with "
                    "`randmix data cifar10-jpeg CLONE` (README: Data)")
def test_the_pinned_digest_is_the_published_archives(tmp_path: Path) -> None:
    """Recomputes CONTENT_SHA256 from the archive the results were computed on, then rebuilds that archive from
    its files laid out as the source repository has them, and reads it back as the dataset."""
    assert ARCHIVE is not None
    members = archive_members(ARCHIVE)
    assert len(members) == cifar10_jpeg.N_FILES and content_digest(members) == CONTENT_SHA256
    clone = _clone(tmp_path / "CIFAR-10-images", dict(members))
    out = tmp_path / "data" / "cifar10-jpeg.tar.gz"
    assert build(clone, out) == CONTENT_SHA256
    assert content_digest(archive_members(out)) == CONTENT_SHA256
    first = out.read_bytes()
    assert build(clone, out, force=True) and out.read_bytes() == first  # the same bytes on every build
    rebuilt = load_split("cifar10-jpeg", False, data_dir=out.parent, cache_dir=tmp_path / "cache")
    published = load_split("cifar10-jpeg", False, data_dir=ARCHIVE.parent, cache_dir=tmp_path / "cache2")
    assert (rebuilt.images == published.images).all() and (rebuilt.labels == published.labels).all()


def test_a_clone_with_other_files_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    clone = _clone(tmp_path / "clone", FILES)
    out = tmp_path / "out.tar.gz"
    result = runner.invoke(app, ["data", "cifar10-jpeg", str(clone), "--out", str(out)], terminal_width=400)
    assert result.exit_code == 2 and not out.exists()
    digest = content_digest([(k, v) for k, v in FILES.items() if k != "README.md"])
    assert f"hold 3 files with content sha256 {digest[:12]}" in result.stderr
    assert "checkout d7d05618061fe37d830fb0419063d113c575ccbc" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_folder_that_is_not_a_clone_and_an_existing_archive_are_one_line_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "cifar10-jpeg", str(tmp_path), "--out", str(tmp_path / "o.tar.gz")],
                           terminal_width=400)
    assert result.exit_code == 2 and "has no train/ folder; pass a clone of" in result.stderr
    (tmp_path / "o.tar.gz").write_bytes(b"mine")
    result = runner.invoke(app, ["data", "cifar10-jpeg", str(_clone(tmp_path / "c", FILES)), "--out",
                                 str(tmp_path / "o.tar.gz")], terminal_width=400)
    assert result.exit_code == 2 and "exists; pass --force" in result.stderr
    assert (tmp_path / "o.tar.gz").read_bytes() == b"mine"


def test_a_damaged_archive_is_one_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(_clone(tmp_path / "c", FILES), arcname=".")
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(ValueError, match="not a readable tar archive"):
        archive_members(bad)


def test_data_list_says_how_to_get_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["data", "list", "--data-dir", str(tmp_path)], terminal_width=400)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "cifar10-jpeg" in line)
    text = " ".join(result.output.replace("│", " ").split())  # the table's wrapped cells, read as one text
    assert (" yes " in row) == (ARCHIVE is not None)
    assert ("`randmix data cifar10-jpeg CLONE`" in text) == (ARCHIVE is None)
    assert " yes " in next(line for line in result.output.splitlines() if "fashion-mnist-mini" in line)
