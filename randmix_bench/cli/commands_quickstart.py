"""``randmix quickstart``: train, attack and compare two small models on the CPU in minutes."""

from __future__ import annotations

from pathlib import Path

import typer

from randmix_bench.cli import options as opts
from randmix_bench.cli.app import app, console
from randmix_bench.cli.errors import user_errors
from randmix_bench.quickstart import QuickstartConfig


@app.command("quickstart")
@user_errors
def quickstart_command(
    out: Path = typer.Option(QuickstartConfig.out, "--out", **opts.PATH,
                             help="Folder for the runs, results and their leaderboard "
                             "(a previous quickstart's is overwritten; any other non-empty folder is refused)."),
    dataset: str = typer.Option(QuickstartConfig.dataset, help="Dataset; without the full Fashion-MNIST the default "
                                "falls back to the bundled `fashion-mnist-mini` subset, and says so."),
    epochs: int = typer.Option(QuickstartConfig.epochs, help="Training epochs per variant."),
    n_examples: int = typer.Option(QuickstartConfig.n_examples, "--n-examples", "-n",
                                   help="Test points to attack (the first n)."),
    eps: str = typer.Option(",".join(e.text for e in QuickstartConfig.eps), help="Linf eps values, comma-separated; "
                            "the largest is the headline."),
    n_iter: int | None = typer.Option(QuickstartConfig.n_iter, "--n-iter",
                                      help="APGD iterations (default: AutoAttack's 100)."),
    device: str = typer.Option(QuickstartConfig.device, help="Device for training and attacks."),
    threads: opts.Threads = str(QuickstartConfig.threads),
    data_dir: Path | None = typer.Option(QuickstartConfig.data_dir, "--data-dir", **opts.PATH,
                                         help="Where the dataset is (see `randmix_bench.data`)."),
) -> None:
    """Train a small `full` and `chans` model on the CPU, attack both, and compare them (offline, minutes)."""
    from randmix_bench import quickstart
    from randmix_bench.cli.progress import TrainProgress, attack_progress
    from randmix_bench.cli.views import QuickstartView, quickstart_table
    from randmix_bench.threads import parse_threads
    from randmix_bench.threat import parse_eps_list
    from randmix_bench.vocab import Norm

    cfg = QuickstartConfig(out=out, dataset=dataset, epochs=epochs, n_examples=n_examples,
                           eps=parse_eps_list(eps, Norm.LINF),
                           n_iter=n_iter, device=device, threads=parse_threads(threads), data_dir=data_dir)
    with attack_progress(console) as attacking:
        rows = quickstart.run(cfg, QuickstartView(console), training=TrainProgress(console), attacking=attacking)
    console.print(quickstart_table(rows, cfg))
    console.print(quickstart.scope(rows[0].result.randmix.dataset), highlight=False)
    console.print(f"Results: {rows[0].path.parent}/ (rendered in {out / 'leaderboards' / 'README.md'}); "
                  f"re-check them with `randmix verify {out / 'leaderboards'}`.", highlight=False)
