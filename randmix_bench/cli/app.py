"""The ``randmix`` Typer application: the root command, the ``shuffle`` group and the consoles the commands print on.

The commands themselves live in the ``commands_*`` modules, which register on :data:`app` (or :data:`shuffle_app`)
when :mod:`randmix_bench.cli` imports them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from randmix_bench import __version__

__all__ = ["app", "console", "err_console", "library_default", "main", "shuffle_app"]

app = typer.Typer(
    name="randmix",
    help="Benchmark for random fixed spatial mixing in vision networks (arXiv 2503.16760).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
shuffle_app = typer.Typer(
    help="Pixel-shuffle decoding: learn to undo one fixed random permutation of pixel positions (claim 3).",
    no_args_is_help=True,
)
app.add_typer(shuffle_app, name="shuffle")
console = Console()
err_console = Console(stderr=True)


def library_default(function: Callable[..., Any], parameter: str) -> Any:
    """``function``'s default for ``parameter``: where the library has no options object, a command's defaults
    are still read from it, never repeated."""
    return inspect.signature(function).parameters[parameter].default


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"randmix-bench {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Benchmark for random fixed spatial mixing in vision networks (arXiv 2503.16760)."""
