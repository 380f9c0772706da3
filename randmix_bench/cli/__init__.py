"""The ``randmix`` command line: thin Typer commands over the library, which returns, calls back and logs.

- :mod:`.app`: the Typer application (:data:`app`, the ``shuffle`` group, the consoles);
- :mod:`.errors`: :func:`~.errors.user_errors`, bad input as one red line and exit code 2;
- :mod:`.options`: the options several commands share (``--threads``), declared once;
- :mod:`.views`: every Rich table and console line drawn from what the library returns and reports;
- :mod:`.progress`: the Rich progress bars of training and evaluation;
- ``commands_*``: the commands, one module per group, imported on first use (:class:`.app.LazyGroup`), so
  that ``randmix --help`` never imports torch.

``randmix`` (pyproject's script) and ``python -m randmix_bench.cli`` both run :data:`app`.
"""

from __future__ import annotations

from randmix_bench.cli.app import app, main

__all__ = ["app", "main"]
