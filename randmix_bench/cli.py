"""The ``randmix`` command line: thin Typer commands over the package's modules."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from randmix_bench import __version__, shuffle
from randmix_bench import train_options as opts
from randmix_bench.errors import RandmixError
from randmix_bench.mixing import Mixing, count_parameters
from randmix_bench.quickstart import QuickstartConfig
from randmix_bench.robustness import DEFAULT_EPS, EvalOptions
from randmix_bench.verify import VerifyOptions
from randmix_bench.vocab import TaskKind

app = typer.Typer(
    name="randmix",
    help="Benchmark for random fixed spatial mixing in vision networks (arXiv 2503.16760).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
NORM_EPS = ", ".join(f"{eps} for {norm}" for norm, eps in DEFAULT_EPS.items())  # 8/255 for Linf, 0.5 for L2

F = TypeVar("F", bound=Callable[..., Any])


def library_default(function: Callable[..., Any], parameter: str) -> Any:
    """``function``'s default for ``parameter``: where the library has no options object, a command's defaults
    are still read from it, never repeated."""
    return inspect.signature(function).parameters[parameter].default


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
    num_classes: int = typer.Option(10, help="Classes to build the classifiers with (unshufflers have none)."),
) -> None:
    """List the registered randmix models with trainable and frozen parameter counts per variant."""
    from randmix_bench.mixing import parse_mixing
    from randmix_bench.models import create_model, list_models, model_task

    variants = [parse_mixing(m) for m in mixing]
    titles = {TaskKind.CLASSIFICATION: "randmix classifiers (timm registry; `randmix train`)",
              TaskKind.SHUFFLE: "randmix unshufflers (image-to-image; `randmix shuffle train`)"}
    tables: dict[str, Table] = {}
    for name in list_models():
        task = model_task(name)
        if task not in tables:
            tables[task] = Table(title=titles[task])
            for col in ("model", "mixing", "trainable", "frozen", "frozen convs"):
                tables[task].add_column(col, justify="right" if col in ("trainable", "frozen", "frozen convs") else "left")
        head = {"num_classes": num_classes} if task is TaskKind.CLASSIFICATION else {}
        for variant in variants:
            model = create_model(name, mixing=variant, in_chans=in_chans, **head)
            trainable, frozen = count_parameters(model)
            n_frozen = len(getattr(model, "mixing").frozen_modules)
            tables[task].add_row(name, variant.value, f"{trainable:,}", f"{frozen:,}", str(n_frozen))
    for table in tables.values():
        console.print(table)


@app.command("reproduce")
@user_errors
def reproduce_command(
    tier: str = typer.Option(..., "--tier", "-t", help="small (a 2-core CPU, hours) or paper (a GPU); plans in randmix_bench/plans.py."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (state and estimated time per job) and exit."),
    only: list[str] = typer.Option([], "--only", help="Run only jobs matching this glob on kind:name or name (repeatable)."),
    shard: str | None = typer.Option(None, "--shard", help="i/N: this process's fixed share of the jobs (SLURM arrays, several GPUs); the leaderboard job runs unsharded."),
    device: str | None = typer.Option(None, help="cpu, cuda or cuda:N (default: cuda when available)."),
    force: bool = typer.Option(False, "--force", help="Redo jobs whose outputs were made with other settings."),
) -> None:
    """Run a tier's whole plan (train, eval, pixel shuffle, leaderboard): finished jobs are skipped, killed ones resume."""
    import time

    from randmix_bench import reproduce
    from randmix_bench.plans import parse_tier

    chosen = parse_tier(tier)
    jobs = reproduce.select(reproduce.plan(chosen), only, reproduce.parse_shard(shard))
    paths = reproduce.Paths()
    if dry_run:
        table = Table(title=f"randmix reproduce --tier {chosen.value}: {len(jobs)} jobs")
        for col in ("#", "job", "kind", "state", "estimate"):
            table.add_column(col, justify="right" if col in ("#", "estimate") else "left")
        left = 0.0
        for i, job in enumerate(jobs, 1):
            state = job.state(paths)
            left += 0 if state is reproduce.JobState.DONE else job.estimate_s
            table.add_row(str(i), job.name, job.kind, state.value, f"{job.estimate_s / 60:.1f} min")
        console.print(table)
        console.print(f"estimated time for the jobs not done: {left / 3600:.2f} h (reference machine of the tier)",
                      highlight=False)
        return

    class Overview:
        def __init__(self) -> None:
            self.began, self.left = time.perf_counter(), sum(j.estimate_s for j in jobs)

        def job_started(self, job: reproduce.AnyJob, index: int, total: int, state: reproduce.JobState) -> None:
            elapsed = time.perf_counter() - self.began
            console.rule(f"[{index + 1}/{total}] {job.kind} {job.name}: {state.value} | elapsed {elapsed / 60:.1f} min, "
                         f"about {self.left / 60:.0f} min left")

        def job_finished(self, job: reproduce.AnyJob, state: reproduce.JobState, seconds: float) -> None:
            self.left -= job.estimate_s

    outcomes = reproduce.run(jobs, paths, device=device, force=force, reporter=Overview())
    summary = Table(title=f"randmix reproduce --tier {chosen.value}")
    for col in ("job", "kind", "was", "ran", "seconds"):
        summary.add_column(col, justify="right" if col == "seconds" else "left")
    for o in outcomes:
        summary.add_row(o.job.name, o.job.kind, o.before.value, "yes" if o.ran else "skipped", f"{o.seconds:.0f}")
    console.print(summary)
    ran = sum(o.ran for o in outcomes)
    console.print(f"{ran} job(s) ran, {len(outcomes) - ran} already done", highlight=False)


@app.command("leaderboard")
@user_errors
def leaderboard_command(
    root: Path = typer.Option(Path("leaderboards"), "--dir", help="Folder of result JSON files."),
    readme: Path = typer.Option(Path("README.md"), "--readme", help="README whose <!-- leaderboard:start/end --> section gets the summary (skipped when absent)."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 when the Markdown is stale (for CI)."),
) -> None:
    """Generate leaderboards/README.md (and the README's marked section) from the result files."""
    from randmix_bench import leaderboard

    if check:
        stale = leaderboard.stale(root, readme)
        if stale:
            err_console.print(f"stale: {', '.join(map(str, stale))}; run `randmix leaderboard` and commit it",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        console.print("leaderboard Markdown is up to date", highlight=False)
        return
    changed = leaderboard.write(root, readme)
    console.print(f"wrote {', '.join(map(str, changed))}" if changed else "leaderboard Markdown already up to date",
                  highlight=False)
    if not readme.is_file():
        console.print(f"note: {readme} not found, so only {root / leaderboard.MARKDOWN_NAME} was generated", highlight=False)


@app.command("verify")
@user_errors
def verify_command(
    paths: list[Path] | None = typer.Argument(None, help="Result files or leaderboard folders (default: "
                                              "leaderboards/)."),
    n: int = typer.Option(VerifyOptions.n, "--n", "-n", help="Test points to re-evaluate per entry (capped at the "
                          "entry's recorded n)."),
    sigmas: float = typer.Option(VerifyOptions.sigmas, help="Sampling tolerance in standard errors."),
    data_dir: Path | None = typer.Option(VerifyOptions.data_dir, "--data-dir",
                                         help="Where the test sets are (see `randmix_bench.data`)."),
    batch_size: int = typer.Option(VerifyOptions.batch_size, help="Evaluation batch size."),
    device: str = typer.Option(VerifyOptions.device, help="Device to evaluate on."),
    robust: bool = typer.Option(VerifyOptions.robust, "--robust/--no-robust", help="Re-attack each robustness entry "
                                "with its strongest white-box attack (minutes per large model on a CPU)."),
) -> None:
    """Re-check leaderboard entries: checkpoint sha256, clean accuracy (or PSNR) recomputed from it, robust accuracy
    re-attacked."""
    from randmix_bench.cli_views import verify_table
    from randmix_bench.leaderboard import load_entries, load_entry
    from randmix_bench.verify import DEVICE_FLIPS, DEVICE_PSNR_DB, TOLERANCE_RULE, failures, verify

    entries = [e for p in (paths or [Path("leaderboards")])
               for e in (load_entries(p) if p.is_dir() else [load_entry(p)])]
    if not entries:
        console.print("no result files to verify", highlight=False)
        return
    options = VerifyOptions(n=n, sigmas=sigmas, data_dir=data_dir, batch_size=batch_size, device=device, robust=robust)
    with console.status("verifying") as status:
        checks = verify(entries, options, progress=status.update)
    console.print(verify_table(checks))
    console.print(TOLERANCE_RULE.format(sigmas=sigmas, flips=DEVICE_FLIPS, psnr_db=DEVICE_PSNR_DB), highlight=False)
    failed, n_entries = failures(checks), len({c.entry for c in checks})  # a robustness entry: a clean, a robust row
    if failed:
        for line in failed:
            err_console.print(f"[red]FAIL[/red] {line}", highlight=False, soft_wrap=True)
        n_failed = len({c.entry for c in checks if not c.ok})
        err_console.print(f"[red]{n_failed} of {n_entries} entries failed verification[/red]")
        raise typer.Exit(1)
    console.print(f"[green]all {n_entries} entries verified[/green]")



@app.command("train")
@user_errors
def train_command(
    recipe: opts.Recipe,
    out: opts.Out,
    model: opts.Model = None,
    mixing: opts.MixingMode = None,
    dataset: opts.Dataset = None,
    data_dir: opts.DataDir = None,
    epochs: opts.Epochs = None,
    batch_size: opts.BatchSize = None,
    lr: opts.Lr = None,
    weight_decay: opts.WeightDecay = None,
    optimizer: opts.OptimizerName = None,
    momentum: opts.Momentum = None,
    lr_schedule: opts.LrSchedule = None,
    decay_norm_bias: opts.DecayNormBias = None,
    grad_clip: opts.GradClip = None,
    label_smoothing: opts.LabelSmoothing = None,
    loss: opts.LossName = None,
    permutation_seed: opts.PermutationSeed = None,
    crop_padding: opts.CropPadding = None,
    flip: opts.Flip = None,
    randaugment_n: opts.RandaugmentN = None,
    randaugment_m: opts.RandaugmentM = None,
    seed: opts.Seed = None,
    mixer_seed: opts.MixerSeed = None,
    smooth_sigma: opts.SmoothSigma = None,
    eval_batch_size: opts.EvalBatchSize = None,
    compile: opts.Compile = None,
    device: opts.Device = None,
    resume: opts.Resume = False,
    force: opts.Force = False,
    quiet: opts.Quiet = False,
) -> None:
    """Train a model with a named recipe, classification or pixel un-shuffling (multi-GPU: torchrun
    --nproc_per_node=N -m randmix_bench.cli train ...)."""
    opts.train_from_options(None, **locals())  # every parameter is an option


@app.command("eval")
@user_errors
def eval_command(
    checkpoint: Path = typer.Argument(..., help="Run folder (with checkpoint.safetensors) or a .safetensors "
                                      "checkpoint."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Test set: cifar10, cifar10-jpeg, fashion-mnist, "
                                "fashion-mnist-mini, ... or an image folder."),
    data_dir: Path | None = typer.Option(EvalOptions.data_dir, "--data-dir",
                                         help="Where the dataset is (see `randmix_bench.data`)."),
    attack: str = typer.Option(EvalOptions.attack, help="none, autoattack, apgd-ce, pgd or square."),
    norm: str = typer.Option(EvalOptions.norm, help="Threat model: Linf or L2."),
    eps: str | None = typer.Option(EvalOptions.eps, help=f"Radius, e.g. 8/255 (default: {NORM_EPS})."),
    n_examples: int = typer.Option(EvalOptions.n_examples, help="Evaluate the first n test points (RobustBench uses "
                                   "10000)."),
    batch_size: int = typer.Option(EvalOptions.batch_size, help="Points per attack batch: larger is faster on a GPU."),
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
                                     "curve PNG beside the JSON."),
    sanity: bool = typer.Option(False, "--sanity", help="Gradient-masking checks (large eps, Square vs white-box, "
                                "AutoAttack flags); exit 3 when they fail."),
    name: str | None = typer.Option(EvalOptions.name, help="Entry name (default: the run folder's name)."),
    out: Path | None = typer.Option(EvalOptions.out, help="Result JSON (default: "
                                    "leaderboards/<dataset>/<norm>/<name>.json)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing result."),
    device: str = typer.Option(EvalOptions.device, help="auto, cpu, cuda or cuda:N."),
) -> None:
    """Robust accuracy under RobustBench's protocol (AutoAttack), written as RobustBench model_info JSON; resumable."""
    from randmix_bench.cli_progress import RichProgress
    from randmix_bench.robustness import SanityOptions, evaluate

    options = EvalOptions(attack=attack, norm=norm, eps=eps or EvalOptions.eps, n_examples=n_examples,
                          batch_size=batch_size, seed=seed, version=version, attacks=attacks or EvalOptions.attacks,
                          n_iter=n_iter, n_queries=n_queries, sweep=sweep or EvalOptions.sweep,
                          sanity=SanityOptions() if sanity else None, data_dir=data_dir, device=device, name=name,
                          out=out)
    try:
        with RichProgress(console) as progress:
            output = evaluate(checkpoint, dataset, options, force=force, progress=progress)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]: rerun the same command to continue where it stopped")
        raise typer.Exit(130) from None
    result, rb = output.result, output.result.randmix
    table = Table(title=f"{result.name}: {rb.dataset} {rb.threat_model} eps={result.eps}, n={rb.n_examples}")
    table.add_column("accuracy after")
    table.add_column("%", justify="right")
    table.add_row("clean", result.clean_acc)
    for attack_name, acc in rb.per_attack_robust_acc.items():
        table.add_row(attack_name, f"{100 * acc:.2f}")
    for point in rb.sweep:
        table.add_row(f"sweep eps={point.eps}", f"{100 * point.robust_acc:.2f}")
    console.print(table)
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

shuffle_app = typer.Typer(
    help="Pixel-shuffle decoding: learn to undo one fixed random permutation of pixel positions (claim 3).",
    no_args_is_help=True,
)
app.add_typer(shuffle_app, name="shuffle")


@shuffle_app.command("train")
@user_errors
@opts.same_options(train_command)
def shuffle_train_command(**options: Any) -> None:
    """Train an unshuffler to reconstruct images from their pixel-shuffled versions: `randmix train` with a
    shuffle recipe."""
    opts.train_from_options(TaskKind.SHUFFLE, **options)


@shuffle_app.command("eval")
@user_errors
def shuffle_eval_command(
    runs: list[Path] = typer.Argument(..., help="Run folders of `randmix shuffle train`, one per variant (one grid "
                                      "row each)."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", help="Where <run folder name>.json and grid.png go, e.g. "
                                 "leaderboards/fashion-mnist/shuffle."),
    n_examples: int | None = typer.Option(library_default(shuffle.evaluate_runs, "n_examples"), "--n-examples", "-n",
                                          help="Score the first n test images (default: all)."),
    grid_images: int = typer.Option(library_default(shuffle.evaluate_runs, "grid_images"), "--grid-images",
                                    help="Test images shown per grid row."),
    batch_size: int = typer.Option(library_default(shuffle.evaluate_runs, "batch_size"), "--batch-size", "-b",
                                   help="Evaluation batch size."),
    data_dir: Path | None = typer.Option(library_default(shuffle.evaluate_runs, "data_dir"), "--data-dir",
                                         help="Where the test set is (default: the run's)."),
    device: str | None = typer.Option(library_default(shuffle.evaluate_runs, "device"),
                                      help="cpu, cuda or cuda:N (default: cuda when available)."),
    force: bool = typer.Option(library_default(shuffle.evaluate_runs, "force"), "--force",
                               help="Overwrite existing result files and grid."),
) -> None:
    """Score runs by PSNR/SSIM against the scrambled input and the mean image; write result JSON and a PNG grid."""
    with console.status("evaluating") as status:
        results = shuffle.evaluate_runs(runs, out_dir, n_examples=n_examples, grid_images=grid_images,
                                        batch_size=batch_size, device=device, data_dir=data_dir, force=force,
                                        progress=status.update)
    table = Table(title=f"pixel un-shuffling, {results[0].dataset}, first {results[0].n_examples} test images")
    for col in ("run", "mixing", "PSNR dB", "SSIM", "scrambled PSNR / SSIM", "mean image PSNR / SSIM"):
        table.add_column(col, justify="left" if col in ("run", "mixing") else "right")
    for r in results:
        table.add_row(r.name, r.mixing, f"{r.psnr:.2f}", f"{r.ssim:.4f}",
                      f"{r.identity_psnr:.2f} / {r.identity_ssim:.4f}",
                      f"{r.mean_image_psnr:.2f} / {r.mean_image_ssim:.4f}")
    console.print(table)
    written = ", ".join(str(out_dir / (r.name + ".json")) for r in results)
    console.print(f"wrote {written} and {out_dir / 'grid.png'}", highlight=False)


@app.command("quickstart")
@user_errors
def quickstart_command(
    out: Path = typer.Option(QuickstartConfig.out, "--out", help="Folder for the runs, results and their leaderboard "
                             "(a previous quickstart's is overwritten; any other non-empty folder is refused)."),
    dataset: str = typer.Option(QuickstartConfig.dataset, help="Dataset; without the full Fashion-MNIST the default "
                                "falls back to the bundled `fashion-mnist-mini` subset, and says so."),
    epochs: int = typer.Option(QuickstartConfig.epochs, help="Training epochs per variant."),
    n_examples: int = typer.Option(QuickstartConfig.n_examples, "--n-examples", "-n",
                                   help="Test points to attack (the first n)."),
    eps: str = typer.Option(",".join(QuickstartConfig.eps), help="Linf eps values, comma-separated; the largest is "
                            "the headline."),
    n_iter: int | None = typer.Option(QuickstartConfig.n_iter, "--n-iter",
                                      help="APGD iterations (default: AutoAttack's 100)."),
    device: str = typer.Option(QuickstartConfig.device, help="Device for training and attacks."),
    threads: int = typer.Option(QuickstartConfig.threads, help="torch CPU threads; 1 is fastest for this tiny model, "
                                "above all on a busy CPU."),
    data_dir: Path | None = typer.Option(QuickstartConfig.data_dir, "--data-dir",
                                         help="Where the dataset is (see `randmix_bench.data`)."),
) -> None:
    """Train a small `full` and `chans` model on the CPU, attack both, and compare them (offline, minutes)."""
    from randmix_bench import quickstart
    from randmix_bench.cli_views import QuickstartView, quickstart_table
    from randmix_bench.robustness import split_list

    cfg = QuickstartConfig(out=out, dataset=dataset, epochs=epochs, n_examples=n_examples, eps=tuple(split_list(eps)),
                           n_iter=n_iter, device=device, threads=threads, data_dir=data_dir)
    rows = quickstart.run(cfg, QuickstartView(console))
    console.print(quickstart_table(rows, cfg))
    console.print(quickstart.scope(rows[0].result.randmix.dataset), highlight=False)
    console.print(f"Results: {rows[0].path.parent}/ (rendered in {out / 'leaderboards' / 'README.md'}); "
                  f"re-check them with `randmix verify {out / 'leaderboards'}`.", highlight=False)


if __name__ == "__main__":
    app()
