"""How a command reports bad input: :func:`user_errors`, one red line on stderr and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from randmix_bench.cli.app import err_console
from randmix_bench.errors import RandmixError

__all__ = ["user_errors"]

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn the package's bad-input errors (:class:`RandmixError`) into one red line on stderr and exit
    code 2; anything else is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RandmixError as e:
            err_console.print(f"[red]Error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
