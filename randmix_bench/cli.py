"""The ``randmix`` command line: thin Typer commands over the package's modules."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from randmix_bench import __version__
from randmix_bench.mixing import Mixing, count_parameters

app = typer.Typer(
    name="randmix",
    help="Benchmark for random fixed spatial mixing in vision networks (arXiv 2503.16760).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn the package's bad-input errors into one red line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, FileExistsError) as e:
            err_console.print(f"[red]Error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"randmix-bench {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
) -> None:
    """Benchmark for random fixed spatial mixing in vision networks (arXiv 2503.16760)."""


@app.command("models")
@user_errors
def models_command(
    mixing: list[str] = typer.Option([m.value for m in Mixing], "--mixing", "-m", help="Variants to list (repeatable)."),
    in_chans: int = typer.Option(3, help="Input channels to build the models with."),
    num_classes: int = typer.Option(10, help="Classes to build the models with."),
) -> None:
    """List the registered randmix models with trainable and frozen parameter counts per variant."""
    from randmix_bench.mixing import parse_mixing
    from randmix_bench.models import create_model, list_models

    variants = [parse_mixing(m) for m in mixing]
    table = Table(title="randmix models (timm registry)")
    for col in ("model", "mixing", "trainable", "frozen", "frozen convs"):
        table.add_column(col, justify="right" if col in ("trainable", "frozen", "frozen convs") else "left")
    for name in list_models():
        for variant in variants:
            model = create_model(name, mixing=variant, in_chans=in_chans, num_classes=num_classes)
            trainable, frozen = count_parameters(model)
            n_frozen = len(getattr(model, "mixing").frozen_modules)
            table.add_row(name, variant.value, f"{trainable:,}", f"{frozen:,}", str(n_frozen))
    console.print(table)


if __name__ == "__main__":
    app()
