"""How the ``randmix`` commands draw what the library returns and reports: every Rich table and console line.

The library stays quiet (it returns results, calls back and logs); this module, owned by the command line, is
where the output of ``models``, ``reproduce``, ``verify``, ``eval``, ``shuffle eval``, ``quickstart`` and
``train`` takes its shape. Progress bars live in :mod:`.progress`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from rich import box
from rich.console import Console
from rich.table import Table

from randmix_bench.data import dataset_info
from randmix_bench.jobs import AnyJob, JobState, Paths
from randmix_bench.results import RobustnessResult, ShuffleResult
from randmix_bench.vocab import Mixing, TaskKind, Tier, n_epochs

if TYPE_CHECKING:  # annotations only: importing them would load the leaderboard (and scipy) for every command
    from randmix_bench import reproduce
    from randmix_bench.quickstart import QuickstartConfig, QuickstartRow
    from randmix_bench.verify import Check

__all__ = ["ModelRow", "QuickstartView", "eval_table", "models_tables", "print_table", "quickstart_table",
           "reproduce_plan_table", "reproduce_summary_table", "shuffle_table", "train_line", "verify_table"]


LOG_WIDTH = 200
"""Columns a table may take in a log: off a terminal Rich assumes 80, which would fold every long job name."""


def _table(title: str, columns: Sequence[str], right: Sequence[str], names: Sequence[str] = ()) -> Table:
    """A table titled ``title`` with ``columns``, those in ``right`` right-justified; text in ``names`` columns is
    never cut short (a job name is what ``--only`` takes): too wide for a terminal, it folds onto the next line."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left",
                         overflow="fold" if col in names else "ellipsis")
    return table


def print_table(console: Console, table: Table) -> None:
    """``table`` on ``console``: on a terminal at its width, in a log (a file, a pipe) as wide as its text needs, up
    to :data:`LOG_WIDTH`."""
    if console.is_terminal:
        console.print(table)
    else:  # Console.print(width=) never widens beyond the console's own width
        Console(file=console.file, width=max(console.width, LOG_WIDTH), color_system=None).print(table)


class ModelRow(NamedTuple):
    """One model variant of ``randmix models``: its parameter counts and frozen convolutions."""

    name: str
    task: TaskKind
    mixing: Mixing
    trainable: int
    frozen: int
    frozen_convs: int


MODELS_TITLES = {TaskKind.CLASSIFICATION: "randmix classifiers (timm registry; `randmix train`)",
                 TaskKind.SHUFFLE: "randmix unshufflers (image-to-image; `randmix shuffle train`)"}


def models_tables(rows: list[ModelRow]) -> list[Table]:
    """One table per task, in the order the tasks first appear in ``rows``."""
    counts = ("trainable", "frozen", "frozen convs")
    tables: dict[TaskKind, Table] = {}
    for row in rows:
        if row.task not in tables:
            tables[row.task] = _table(MODELS_TITLES[row.task], ("model", "mixing", *counts), counts)
        tables[row.task].add_row(row.name, row.mixing.value, f"{row.trainable:,}", f"{row.frozen:,}",
                                 str(row.frozen_convs))
    return list(tables.values())


def reproduce_plan_table(tier: Tier, jobs: Sequence[AnyJob],
                         paths: Paths) -> tuple[Table, list[tuple[AnyJob, float, bool]]]:
    """``reproduce --dry-run``: each job's state and estimate; with the work left, ``(job, seconds, False)`` per job
    in plan order (0 for a job done), for :func:`~randmix_bench.reproduce.time_left`."""
    table = _table(f"randmix reproduce --tier {tier.value}: {len(jobs)} jobs",
                   ("#", "job", "kind", "state", "estimate"), ("#", "estimate"), names=("job",))
    work: list[tuple[AnyJob, float, bool]] = []
    for i, job in enumerate(jobs, 1):
        state = job.state(paths)
        work.append((job, 0.0 if state is JobState.DONE else job.estimate_s, False))
        table.add_row(str(i), job.name, job.kind, state.value, f"{job.estimate_s / 60:.1f} min")
    return table, work


def reproduce_summary_table(tier: Tier, outcomes: Sequence[reproduce.JobRun]) -> Table:
    """What ``reproduce`` did with each job."""
    table = _table(f"randmix reproduce --tier {tier.value}", ("job", "kind", "was", "ran", "seconds"), ("seconds",),
                   names=("job",))
    for o in outcomes:
        table.add_row(o.job.name, o.job.kind, o.before.value, "yes" if o.ran else "skipped", f"{o.seconds:.0f}")
    return table


def eval_table(result: RobustnessResult) -> Table:
    """``randmix eval``'s accuracies: clean, after each attack, at each swept eps."""
    rb = result.randmix
    table = _table(f"{result.name}: {rb.dataset} {rb.threat_model} eps={result.eps}, n={rb.n_examples}",
                   ("accuracy after", "%"), ("%",))
    table.add_row("clean", result.clean_acc)
    for attack_name, acc in rb.per_attack_robust_acc.items():
        table.add_row(attack_name, f"{100 * acc:.2f}")
    for point in rb.sweep:
        table.add_row(f"sweep eps={point.eps}", f"{100 * point.robust_acc:.2f}")
    return table


def shuffle_table(results: list[ShuffleResult]) -> Table:
    """``randmix shuffle eval``'s scores, with the scrambled input's and the mean image's as baselines."""
    names = ("run", "mixing")
    table = _table(f"pixel un-shuffling, {results[0].dataset}, first {results[0].n_examples} test images",
                   (*names, "PSNR dB", "SSIM", "scrambled PSNR / SSIM", "mean image PSNR / SSIM"),
                   ("PSNR dB", "SSIM", "scrambled PSNR / SSIM", "mean image PSNR / SSIM"))
    for r in results:
        table.add_row(r.name, r.mixing, f"{r.psnr:.2f}", f"{r.ssim:.4f}",
                      f"{r.identity_psnr:.2f} / {r.identity_ssim:.4f}",
                      f"{r.mean_image_psnr:.2f} / {r.mean_image_ssim:.4f}")
    return table


def train_line(summary: dict[str, Any], out: Path) -> str:
    """A finished run in one line: headline test metric, epochs, speed, wall time, folder."""
    headline = ", ".join(f"{k} {v:.4f}" for k, v in list((summary["test"] or {}).items())[:1])
    images = summary["steps_per_epoch"] * summary["config"]["batch_size"] * summary["epochs_done"]
    return (f"{summary['model']} {summary['mixing']} on {summary['dataset']}: {headline} | "
            f"{n_epochs(summary['epochs_done'])} in {summary['train_time_s']:.1f} s "
            f"({images / max(summary['train_time_s'], 1e-9):,.0f} img/s), "
            f"wall {summary['provenance']['wall_time_s']:.1f} s -> {out}")


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
                    f"(Linf), {n_epochs(cfg.epochs)} on {rows[0].summary['provenance']['device']}",
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
