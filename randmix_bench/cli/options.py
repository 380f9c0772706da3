"""Options several commands share, declared once (the Typer idiom for a reused option: an ``Annotated`` type)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from randmix_bench.threads import AUTO

__all__ = ["AUTO", "Threads", "PATH"]


def _path_text(text: str | Path) -> Path:
    """A path option's text as a ``Path`` (its default arrives as one already): an empty text, as an unset shell
    variable gives (``-o "$OUT"``), is refused instead of read as the current folder."""
    if not str(text).strip():
        raise typer.BadParameter("is empty; name a path")
    return Path(text)


PATH: dict[str, Any] = {"parser": _path_text, "metavar": "<path>"}
"""``typer.Option(..., **PATH)``: a path option that refuses empty text, shown as typer shows a path."""


Threads = Annotated[str, typer.Option(
    "--threads", help="torch CPU threads: a count, or auto (every core this process may use, shared between "
    "parallel jobs; threads wait passively, so a busy core costs little). See randmix_bench/threads.py.")]
