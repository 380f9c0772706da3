"""Options several commands share, declared once (the Typer idiom for a reused option: an ``Annotated`` type)."""

from __future__ import annotations

from typing import Annotated

import typer

from randmix_bench.threads import AUTO

__all__ = ["AUTO", "Threads"]

Threads = Annotated[str, typer.Option(
    "--threads", help="torch CPU threads: a count, or auto (every core this process may use, shared between "
    "parallel jobs; threads wait passively, so a busy core costs little). See randmix_bench/threads.py.")]
