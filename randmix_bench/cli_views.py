"""How the ``randmix`` commands draw what the library returns and reports: Rich tables and console lines.

The library stays quiet (it returns results, calls back and logs); this module, owned by the command line, is
where ``verify``'s and ``quickstart``'s output takes its shape. Progress bars live in :mod:`.cli_progress`.
"""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.table import Table

from randmix_bench.data import dataset_info
from randmix_bench.quickstart import QuickstartConfig, QuickstartRow
from randmix_bench.verify import Check

__all__ = ["QuickstartView", "quickstart_table", "verify_table"]


class QuickstartView:
    """A :class:`~randmix_bench.quickstart.QuickstartReporter` on a console: the data line, a rule per step."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def data(self, line: str) -> None:
        self.console.print(line, highlight=False)

    def stage(self, title: str) -> None:
        self.console.rule(title)


def _max_se(n: int) -> str:
    """The largest binomial standard error of an accuracy on ``n`` points (at 50%), in points."""
    return f"±{100 * math.sqrt(0.25 / n):.1f}"


def quickstart_table(rows: list[QuickstartRow], cfg: QuickstartConfig) -> Table:
    """The comparison: parameters, training time, clean accuracy, robust accuracy at each eps."""
    first = rows[0].result.randmix
    n_test, n = dataset_info(first.dataset).test_size, first.n_examples
    t = Table(title=f"randmix quickstart: {' vs '.join(r.variant for r in rows)}, {first.model} on {first.dataset} "
                    f"(Linf), {cfg.epochs} epoch(s) on {rows[0].summary['provenance']['device']}",
              caption=f"test acc: all {n_test:,} test points; clean and robust: the first {n}. Attack: "
                      f"{cfg.attack_description()}. One standard error is at most {_max_se(n)} points on {n} "
                      f"points, {_max_se(n_test)} on {n_test:,}.",
              box=box.SIMPLE_HEAD)
    t.add_column("variant")
    for col in ("learned\nparams", "frozen\nparams", "train s", "test acc %", "clean %",
                *(f"robust %\nε={p.eps}" for p in first.sweep)):
        t.add_column(col, justify="right")
    for r in rows:
        rb = r.result.randmix
        t.add_row(r.variant, f"{rb.params_trainable:,}", f"{rb.params_frozen:,}", f"{r.summary['train_time_s']:.0f}",
                  f"{100 * r.summary['test']['test_acc']:.1f}", f"{100 * rb.clean_acc:.1f}",
                  *(f"{100 * p.robust_acc:.1f}" for p in rb.sweep))
    return t


def verify_table(checks: list[Check]) -> Table:
    """The verification as a compact table, one row per check; failures are spelled out by
    :func:`randmix_bench.verify.failures`."""
    t = Table(title="randmix verify", caption="N/m: points the entry was measured on / re-measured here",
              box=box.SIMPLE_HEAD)
    t.add_column("entry", overflow="fold")
    for col in ("sha256", "metric", "N/m", "recorded", "measured", "tol ±", "result"):
        t.add_column(col, justify="left" if col in ("sha256", "metric", "result") else "right", no_wrap=True)

    def num(x: float | None) -> str:
        return "" if x is None else f"{x:.2f}"

    for c in checks:
        t.add_row(c.entry, "[green]ok[/green]" if c.sha256_ok else "[red]differs[/red]", c.metric,
                  f"{c.n_recorded}/{c.n_checked if c.n_checked is not None else '—'}", num(c.recorded),
                  num(c.measured), num(c.tolerance), "[green]ok[/green]" if c.ok else "[red]FAIL[/red]")
    return t
