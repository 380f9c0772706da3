"""``randmix reproduce``: a tier's whole plan, resumable job by job."""

from __future__ import annotations

import signal
from types import FrameType

import typer

from randmix_bench.cli import options as opts
from randmix_bench.cli.app import app, console, err_console
from randmix_bench.cli.errors import user_errors


@app.command("reproduce")
@user_errors
def reproduce_command(
    tier: str = typer.Option(
        ..., "--tier", "-t", help="smoke (seconds), small (a pipeline smoke test, 2-core CPU), medium (the claims "
        "on a 2-core CPU, days of CPU over several sittings), paper-slice or paper (a GPU); plans in "
        "randmix_bench/plans.py.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan (state and estimated time per job) and exit."
    ),
    only: list[str] = typer.Option(
        [], "--only", help="Run only jobs matching this glob on kind:name or name (repeatable)."
    ),
    shard: str | None = typer.Option(
        None, "--shard",
        help="i/N: this process's fixed share of the jobs (SLURM arrays, several GPUs); transfer attacks (they read "
        "another run's checkpoint) and the leaderboard job run unsharded, after the shards.",
    ),
    device: str | None = typer.Option(None, help="cpu, cuda or cuda:N (default: cuda when available)."),
    force: bool = typer.Option(False, "--force", help="Redo jobs whose outputs were made with other settings."),
    jobs_n: str = typer.Option("auto", "--jobs", "-j", help="Job groups (a training run and its evaluations) run "
                               "in parallel processes, then the transfer attacks: a count, or auto (one per CPU core "
                               "on the CPU, one on a GPU)."),
    threads: opts.Threads = opts.AUTO,
) -> None:
    """Run a tier's whole plan (train, eval, pixel shuffle, leaderboard): finished jobs are skipped, killed ones resume."""  # noqa: E501  (one line in --help)
    from randmix_bench import reproduce
    from randmix_bench.cli.progress import ReproduceProgress, TrainProgress
    from randmix_bench.cli.views import print_table, reproduce_plan_table, reproduce_summary_table
    from randmix_bench.jobs import Paths, tier_jobs
    from randmix_bench.plans import parse_tier
    from randmix_bench.threads import cpu_threads, parse_threads

    chosen = parse_tier(tier)
    jobs = reproduce.select(tier_jobs(chosen), only, reproduce.parse_shard(shard))
    workers = reproduce.parse_jobs(jobs_n, device)
    n_threads = parse_threads(threads, jobs=workers)
    paths = Paths()
    if dry_run:
        table, work = reproduce_plan_table(chosen, jobs, paths)
        print_table(console, table)
        left = sum(seconds for _, seconds, _ in work)
        spread = (f", about {reproduce.time_left(work, workers) / 3600:.1f} h with --jobs {workers}" if workers > 1
                  else "")
        console.print(f"estimated time for the jobs not done: {left / 3600:.2f} h of one process{spread} (reference "
                      "machine of the tier)", highlight=False, soft_wrap=True)
        return
    previous = signal.signal(signal.SIGTERM, _stop)  # kill or a scheduler's time limit: stop as Ctrl-C does
    try:
        with cpu_threads(n_threads):
            outcomes = reproduce.run(jobs, paths, device=device, force=force, training=TrainProgress(console),
                                     reporter=ReproduceProgress(console, jobs, workers), workers=workers,
                                     threads=n_threads)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]: rerun the same command to resume (finished jobs are kept; "
                          "a stopped training continues from its last epoch, an evaluation from its last batch)",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    print_table(console, reproduce_summary_table(chosen, outcomes))
    ran = sum(o.ran for o in outcomes)
    console.print(f"{ran} job(s) ran, {len(outcomes) - ran} already done", highlight=False)


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as a KeyboardInterrupt: the workers are stopped and the queues closed, nothing left half-written."""
    raise KeyboardInterrupt
