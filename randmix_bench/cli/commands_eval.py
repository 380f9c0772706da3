"""``randmix eval`` and ``randmix shuffle eval``: score trained models (robust accuracy; PSNR / SSIM)."""

from __future__ import annotations

from pathlib import Path

import typer

from randmix_bench import shuffle_eval
from randmix_bench.cli import options as opts
from randmix_bench.cli.app import app, console, err_console, library_default, shuffle_app
from randmix_bench.cli.errors import user_errors
from randmix_bench.robustness import EvalOptions
from randmix_bench.threat import DEFAULT_EPS

NORM_EPS = ", ".join(f"{eps} for {norm}" for norm, eps in DEFAULT_EPS.items())  # 8/255 for Linf, 0.5 for L2


@app.command("eval")
@user_errors
def eval_command(
    checkpoint: Path = typer.Argument(..., help="Run folder (with checkpoint.safetensors) or a .safetensors "
                                      "checkpoint."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Test set: cifar10, cifar10-jpeg, fashion-mnist, "
                                "fashion-mnist-mini, ... or an image folder."),
    data_dir: Path | None = typer.Option(EvalOptions.data_dir, "--data-dir", **opts.PATH,
                                         help="Where the dataset is (see `randmix_bench.data`)."),
    attack: str = typer.Option(EvalOptions.attack, help="none, autoattack, apgd-ce, pgd, square or transfer "
                                "(with --transfer-from)."),
    norm: str = typer.Option(EvalOptions.threat.norm, help="Threat model: Linf or L2."),
    eps: str | None = typer.Option(None, help=f"The entry's headline radius, e.g. 8/255 (default: "
                                   f"{NORM_EPS}; with --sweep, the default only when the sweep holds it)."),
    n_examples: int = typer.Option(EvalOptions.n_examples, "--n-examples", "-n",
                                   help="Evaluate the first n test points (RobustBench uses 10000)."),
    batch_size: int = typer.Option(EvalOptions.batch_size, help="Points per attack batch (AutoAttack's default; "
                                    "fastest measured on a CPU): larger is faster on a GPU."),
    seed: int = typer.Option(EvalOptions.seed, help="Attack seed (AutoAttack seeds every batch with it)."),
    version: str = typer.Option(EvalOptions.version, help="AutoAttack version: standard, plus or custom (with "
                                "--attacks)."),
    attacks: str | None = typer.Option(None, help="Comma-separated attacks for --version custom: apgd-ce, apgd-dlr, "
                                       "apgd-t, fab, fab-t, square, pgd."),
    n_iter: int | None = typer.Option(EvalOptions.n_iter, help="APGD/FAB/PGD iterations (custom versions; AutoAttack's "
                                      "100 otherwise)."),
    n_queries: int | None = typer.Option(EvalOptions.n_queries, help="Square queries (custom versions; AutoAttack's "
                                         "5000 otherwise)."),
    sweep: str | None = typer.Option(None, help="Comma-separated eps list, e.g. 1/255,2/255,4/255,8/255: a robustness "
                                     "curve PNG beside the JSON. The headline eps is --eps (attacked too when not in "
                                     "the list); without --eps the list must hold the norm's default."),
    sweep_attacks: str | None = typer.Option(None, help="Attacks of the sweep's other eps values when cheaper than "
                                             "the main ones, e.g. apgd-ce (AutoAttack custom); default: the main "
                                             "attacks."),
    transfer_from: Path | None = typer.Option(None, **opts.PATH,
                                              help="With --attack transfer: the checkpoint (or run folder) the "
                                              "APGD-CE examples are made on; the evaluated model is judged on them "
                                              "(a gradient-masking control)."),
    sanity: bool = typer.Option(False, "--sanity", help="Gradient-masking checks (large eps, Square vs white-box, "
                                "AutoAttack flags); exit 3 when they fail."),
    name: str | None = typer.Option(EvalOptions.name, help="Entry name (default: the run folder's name)."),
    out: Path | None = typer.Option(EvalOptions.out, **opts.PATH, help="Result JSON (default: "
                                    "leaderboards/<dataset>/<norm>/<name>.json)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing result."),
    device: str = typer.Option(EvalOptions.device, help="auto, cpu, cuda or cuda:N."),
    threads: opts.Threads = opts.AUTO,
) -> None:
    """Robust accuracy under RobustBench's protocol (AutoAttack), written as RobustBench model_info JSON; resumable."""
    from randmix_bench.cli.progress import attack_progress
    from randmix_bench.cli.views import eval_table
    from randmix_bench.robustness import VERSIONS, SanityOptions, evaluate, parse_attacks, parse_threat
    from randmix_bench.threads import cpu_threads, parse_threads
    from randmix_bench.vocab import AAVersion, Attack

    threat, points = parse_threat(norm, eps, sweep or ())
    n_threads = parse_threads(threads)
    options = EvalOptions(attack=Attack.parse(attack), threat=threat, n_examples=n_examples,
                          batch_size=batch_size, seed=seed, version=AAVersion.parse(version, VERSIONS),
                          attacks=parse_attacks(attacks or ()), n_iter=n_iter, n_queries=n_queries, sweep=points,
                          sweep_attacks=parse_attacks(sweep_attacks or (), "--sweep-attacks"),
                          sanity=SanityOptions() if sanity else None, transfer_from=transfer_from,
                          data_dir=data_dir, device=device, name=name, out=out, processes=n_threads)
    try:
        with cpu_threads(n_threads), attack_progress(console) as progress:
            output = evaluate(checkpoint, dataset, options, force=force, progress=progress)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]: rerun the same command to continue where it stopped")
        raise typer.Exit(130) from None
    rb = output.result.randmix
    console.print(eval_table(output.result))
    if rb.resumed:
        console.print("continued a partial evaluation (attack times add up every part)", highlight=False)
    console.print(f"wrote {output.path}" + (f" and {output.curve}" if output.curve else ""), highlight=False)
    if rb.sanity is not None:
        for line in rb.sanity.notes:
            console.print(f"sanity: {line}", highlight=False, soft_wrap=True)
    for flag in rb.autoattack_flags:
        err_console.print(f"[yellow]AutoAttack flag:[/yellow] {flag}", highlight=False, soft_wrap=True)
    if rb.autoattack_flags:
        err_console.print("[yellow]warning[/yellow]: AutoAttack flagged this evaluation, so the entry is marked "
                          "unreliable: the robust accuracy may be an overestimate (gradients may be masked); do not "
                          "trust it until the cause is found", highlight=False, soft_wrap=True)
    if rb.sanity is not None and not rb.sanity.passed:
        err_console.print("[red]sanity checks FAILED[/red]: this robust accuracy may come from gradient masking; "
                          "the entry is marked unreliable", soft_wrap=True)
        raise typer.Exit(3)


@shuffle_app.command("eval")
@user_errors
def shuffle_eval_command(
    runs: list[Path] = typer.Argument(..., help="Run folders of `randmix shuffle train`, one per variant (one grid "
                                      "row each)."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", **opts.PATH,
                                 help="Where <run folder name>.json and grid.png go, e.g. "
                                 "leaderboards/fashion-mnist/shuffle."),
    n_examples: int | None = typer.Option(library_default(shuffle_eval.evaluate_runs, "n_examples"), "--n-examples",
                                          "-n", help="Score the first n test images (default: all)."),
    grid_images: int = typer.Option(library_default(shuffle_eval.evaluate_runs, "grid_images"), "--grid-images",
                                    help="Test images shown per grid row."),
    batch_size: int = typer.Option(library_default(shuffle_eval.evaluate_runs, "batch_size"), "--batch-size", "-b",
                                   help="Evaluation batch size."),
    data_dir: Path | None = typer.Option(library_default(shuffle_eval.evaluate_runs, "data_dir"), "--data-dir",
                                         **opts.PATH,
                                         help="Where the test set is (default: the run's)."),
    device: str | None = typer.Option(library_default(shuffle_eval.evaluate_runs, "device"),
                                      help="cpu, cuda or cuda:N (default: cuda when available)."),
    force: bool = typer.Option(library_default(shuffle_eval.evaluate_runs, "force"), "--force",
                               help="Overwrite existing result files and grid."),
    threads: opts.Threads = opts.AUTO,
) -> None:
    """Score runs by PSNR/SSIM against the scrambled input and the mean image; write result JSON and a PNG grid."""
    from randmix_bench.cli.progress import status
    from randmix_bench.cli.views import shuffle_table
    from randmix_bench.threads import cpu_threads, parse_threads

    with cpu_threads(parse_threads(threads)), status(console, "evaluating") as report:
        results = shuffle_eval.evaluate_runs(runs, out_dir, n_examples=n_examples, grid_images=grid_images,
                                        batch_size=batch_size, device=device, data_dir=data_dir, force=force,
                                        progress=report)
    console.print(shuffle_table(results))
    written = ", ".join(str(out_dir / (r.name + ".json")) for r in results)
    console.print(f"wrote {written} and {out_dir / 'grid.png'}", highlight=False)
