"""How a command reports bad input: :func:`user_errors`, one red line on stderr and exit code 2.

The machine's own faults (a read-only or full disk, a name over 255 bytes, a path under ``/proc``) are caught
here, once for every command, as an :class:`OSError` whose errno says so (:func:`randmix_bench.files.os_error_line`):
every write goes through an atomic temporary file, so such a failure leaves nothing half-written behind."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from randmix_bench.cli.app import err_console
from randmix_bench.errors import RandmixError
from randmix_bench.files import os_error_line

__all__ = ["user_errors"]

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn the package's bad-input errors (:class:`RandmixError`) and the machine's OS errors (permissions, space,
    name length) into one red line on stderr and exit code 2; anything else is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RandmixError as e:
            err_console.print(f"[red]Error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as e:
            line = os_error_line(e)
            if line is None:
                raise
            err_console.print(f"[red]Error:[/red] {line}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
