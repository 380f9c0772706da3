"""``randmix leaderboard`` and ``randmix verify``: publish the result files, and re-check them."""

from __future__ import annotations

from pathlib import Path

import typer

from randmix_bench.cli import options as opts
from randmix_bench.cli.app import app, console, err_console
from randmix_bench.cli.errors import user_errors
from randmix_bench.errors import RandmixError
from randmix_bench.verify import VerifyOptions


@app.command("leaderboard")
@user_errors
def leaderboard_command(
    root: Path = typer.Option(Path("leaderboards"), "--dir", **opts.PATH,
                              help="Folder of result JSON files."),
    readme: Path | None = typer.Option(
        None, "--readme", **opts.PATH,
        help="README whose <!-- leaderboard:start/end --> section gets the summary (skipped when absent; default: "
        "README.md in --dir's parent folder, the project's README for leaderboards/).",
    ),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 when the Markdown is stale (for CI)."),
) -> None:
    """Generate leaderboards/README.md (and the README's marked section) from the result files."""
    from randmix_bench import leaderboard

    readme = root.parent / "README.md" if readme is None else readme  # another folder never rewrites ours
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
        console.print(f"note: {readme} not found, so only {root / leaderboard.MARKDOWN_NAME} was generated",
                      highlight=False)


@app.command("verify")
@user_errors
def verify_command(
    paths: list[Path] | None = typer.Argument(None, help="Result files or leaderboard folders (default: "
                                              "leaderboards/)."),
    n: int = typer.Option(VerifyOptions.n, "--n", "-n", help="Test points to re-evaluate per entry (capped at the "
                          "entry's recorded n)."),
    sigmas: float = typer.Option(VerifyOptions.sigmas, help="Sampling tolerance in standard errors."),
    data_dir: Path | None = typer.Option(VerifyOptions.data_dir, "--data-dir", **opts.PATH,
                                         help="Where the test sets are (see `randmix_bench.data`)."),
    batch_size: int = typer.Option(VerifyOptions.batch_size, help="Evaluation batch size."),
    device: str = typer.Option(VerifyOptions.device, help="Device to evaluate on."),
    robust: bool = typer.Option(VerifyOptions.robust, "--robust/--no-robust", help="Re-attack each robustness entry "
                                "with its strongest white-box attack (minutes per large model on a CPU)."),
    full_test: bool = typer.Option(VerifyOptions.full_test, "--full-test/--no-full-test", help="Re-derive "
                                   "clean_acc_full_test on every test point (minutes per large model on a CPU); "
                                   "without it, on n random test points."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first entry that fails."),
    log: Path | None = typer.Option(None, "--log", **opts.PATH,
                                    help="Append each entry's checks to this file as they finish; a "
                                    "rerun with the same file skips the entries it holds (unchanged files, same "
                                    "options), so an interrupted run loses nothing."),
    threads: opts.Threads = opts.AUTO,
) -> None:
    """Re-check leaderboard entries: checkpoint sha256, clean accuracy (or PSNR) recomputed from it, robust accuracy
    re-attacked."""
    from randmix_bench.cli.progress import plain, status
    from randmix_bench.cli.views import verify_table
    from randmix_bench.entries import load_entries, load_entry
    from randmix_bench.threads import cpu_threads, parse_threads
    from randmix_bench.verify import DEVICE_FLIPS, DEVICE_PSNR_DB, TOLERANCE_RULE, Check, VerifyLog, failures, verify

    n_threads = parse_threads(threads)
    entries = [e for p in (paths or [Path("leaderboards")])
               for e in (load_entries(p) if p.is_dir() else [load_entry(p)])]
    if not entries:  # a mistyped folder would otherwise pass CI having checked nothing
        raise RandmixError(f"no result files under {', '.join(map(str, paths or [Path('leaderboards')]))}; name the "
                           "folder that `randmix eval` and `randmix shuffle eval` write their results into, or files")
    options = VerifyOptions(n=n, sigmas=sigmas, data_dir=data_dir, batch_size=batch_size, device=device, robust=robust,
                            full_test=full_test)
    record = None if log is None else VerifyLog(log, options)
    done: list[Check] = []

    def checked(entry_checks: list[Check]) -> None:
        done.extend(entry_checks)
        n_done = len({c.entry for c in done})
        for c in entry_checks:
            verdict = "ok  " if c.ok else "FAIL"
            numbers = f"{c.measured:.2f} vs recorded {c.recorded:.2f}" if c.measured is not None else c.problem
            plain(console, f"[{n_done}/{len(entries)}] {verdict} {c.entry} {c.metric}: {numbers}")

    try:
        with cpu_threads(n_threads), status(console, "verifying") as report:
            checks = verify(entries, options, progress=report, checked=checked, fail_fast=fail_fast, log=record)
    except KeyboardInterrupt:
        if done:
            console.print(verify_table(done))
        kept = f"; rerun with --log {log} to continue" if log is not None else " (pass --log FILE to keep them)"
        err_console.print(f"[yellow]interrupted[/yellow] after {len({c.entry for c in done})} of {len(entries)} "
                          f"entries{kept}", highlight=False)
        raise typer.Exit(130) from None
    console.print(verify_table(checks))
    console.print(TOLERANCE_RULE.format(sigmas=sigmas, flips=DEVICE_FLIPS, psnr_db=DEVICE_PSNR_DB), highlight=False)
    failed, n_entries = failures(checks), len({c.entry for c in checks})  # a robustness entry: a clean, a robust row
    if failed:
        for line in failed:
            err_console.print(f"[red]FAIL[/red] {line}", highlight=False, soft_wrap=True)
        n_failed = len({c.entry for c in checks if not c.ok})
        stopped = " (stopped there: --fail-fast)" if fail_fast and n_entries < len(entries) else ""
        err_console.print(f"[red]{n_failed} of {n_entries} entries failed verification[/red]{stopped}")
        raise typer.Exit(1)
    console.print(f"[green]{'the entry' if n_entries == 1 else f'all {n_entries} entries'} verified[/green]")
