"""What long commands print when stdout is not a terminal (a log file, a pipe, CI): plain lines as the work goes,
never a bar redrawn in place that shows nothing until the end; and which data a run trains on."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from randmix_bench import step_clock
from randmix_bench.cli.progress import PlainProgress, RichProgress, TrainProgress, attack_progress, status

REPO = Path(__file__).resolve().parents[1]
BAR = re.compile(r"━+ \d+/\d+")  # a Rich bar with its count (tables use the same line glyph)


def test_plain_progress_prints_stages_points_and_robust_accuracy() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)
    assert isinstance(attack_progress(console), PlainProgress)
    assert isinstance(attack_progress(Console(file=io.StringIO(), force_terminal=True)), RichProgress)
    with PlainProgress(console, interval=0.0) as progress:
        progress.start("eps=8/255 · apgd-ce", 10)
        progress.advance(4, 0.6)
        progress.advance(6, 0.25)
    lines = out.getvalue().splitlines()
    assert lines[0] == "eps=8/255 · apgd-ce: 10 point(s) to attack"
    assert lines[1].startswith("eps=8/255 · apgd-ce: 4/10 points, robust acc 60.00%, ")
    assert lines[2].startswith("eps=8/255 · apgd-ce: 10/10 points, robust acc 25.00%, ") and lines[2].endswith(" s")
    quiet = io.StringIO()
    with PlainProgress(Console(file=quiet), interval=3600.0) as progress:  # throttled: start and end only
        progress.start("eps=1/255 · square", 10)
        for _ in range(5):
            progress.advance(2, 0.5)
    assert [line.split(":")[1].split(",")[0] for line in quiet.getvalue().splitlines()] == [" 10 point(s) to attack",
                                                                                         " 10/10 points"]


def test_status_is_a_line_per_message_off_a_terminal() -> None:
    out = io.StringIO()
    with status(Console(file=out), "evaluating") as report:
        report("loading the test set")
        report("checking [bold]x[/bold].json")
    # the opening words are a terminal's spinner; a name is printed as it is, never read as Rich markup
    assert out.getvalue().splitlines() == ["loading the test set", "checking [bold]x[/bold].json"]


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, RANDMIX_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "randmix_bench.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_the_step_clock_says_where_a_training_is_at_most_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted from a resumed epoch, said once ``interval`` seconds have passed since the start or the last report,
    never at an epoch's last step, and a full interval after a rest (an epoch line just said)."""
    now = [100.0]
    monkeypatch.setattr(step_clock.time, "monotonic", lambda: now[0])
    clock = step_clock.StepClock()
    clock.start(per_epoch=3, epochs_done=1)
    said = []
    for _ in range(6):  # epoch 2's steps 1-3, epoch 3's steps 1-3; 10 s a step
        now[0] += 10.0
        said.append(clock.tick(15.0))
    assert said == [None, (2, 2), None, (3, 1), None, None]  # 20 s in; step 3/3 is its epoch line's; 20 s; end
    clock.rest()
    now[0] += 14.0
    assert clock.tick(15.0) is None  # 14 s after the rest
    now[0] += 1.0
    assert clock.tick(15.0) == (4, 2) and clock.done == 11


@pytest.mark.parametrize("interval, lines", [(0.0, ["epoch 2/2: step 1/3", "epoch 2/2: step 2/3"]), (3600.0, [])])
def test_a_training_off_a_terminal_says_how_far_into_its_epoch_it_is(interval: float, lines: list[str]) -> None:
    """A half-hour epoch in a log: a line of the steps done at most every ``interval`` seconds, never for an epoch's
    last step (its epoch line follows); on a terminal the bar says it instead."""
    out = io.StringIO()
    progress = TrainProgress(Console(file=out, width=200), interval=interval)
    progress.start(3, 2, 1)  # resumed after epoch 1 of 2, 3 steps an epoch
    for _ in range(3):
        progress.step(0.01)
    progress.stop()
    said = [line for line in out.getvalue().splitlines() if line.startswith("epoch ")]
    assert [line.split("  lr ")[0] for line in said] == lines
    assert all(line.endswith(")") and "(elapsed " in line for line in said)


@pytest.mark.slow
def test_a_background_train_and_eval_log_their_progress_as_they_go(tmp_path: Path) -> None:
    """stdout is a pipe: the first epoch's line arrives while the run is still going (flushed, not held until the
    end), with the loss and the time elapsed; the recipe's synthetic data is said, not silent; the attacks log
    points done and robust accuracy per stage."""
    run = _cli("shuffle", "train", "-r", "unshuffle-quick", "--epochs", "2", "--device", "cpu", "--out", "run",
               cwd=tmp_path)
    assert run.stdout is not None
    first = run.stdout.readline()
    assert first.startswith("data: synthetic, recipe unshuffle-quick's dataset: seeded noise") and \
        "pass --dataset fashion-mnist" in first
    lines = [first]
    while not lines[-1].startswith("epoch 1/2"):
        lines.append(run.stdout.readline())
        assert lines[-1], lines  # the output ended before the first epoch's line
    assert run.poll() is None, "the first epoch was only printed when the run ended"
    assert " loss " in lines[-1] and "(elapsed " in lines[-1]
    rest = run.communicate()[0]
    assert run.returncode == 0, rest
    assert "epoch 2/2" in rest and not BAR.search("".join(lines) + rest)
    assert lines[1].startswith("training: 2 epochs of ")

    explicit = _cli("train", "-r", "quick", "--dataset", "synthetic", "--epochs", "1", "--device", "cpu", "--out",
                    "clf", cwd=tmp_path).communicate()[0]
    assert "data: synthetic" not in explicit and "epoch 1/1" in explicit  # asked for: nothing to say

    attacked = _cli("eval", "clf", "-d", "synthetic", "--version", "custom", "--attacks", "apgd-ce,square",
                    "--n-iter", "3", "--n-queries", "20", "--n-examples", "16", "--batch-size", "8", "--eps", "8/255",
                    "--device", "cpu", "--out", "clf.json", cwd=tmp_path).communicate()[0]
    assert "eps=8/255 · apgd-ce: " in attacked and "eps=8/255 · square: " in attacked, attacked
    planned = re.search(r"^eps=8/255 · apgd-ce: (\d+) point\(s\) to attack$", attacked, flags=re.M)
    assert planned and int(planned[1]) > 0, attacked  # the points the model classifies correctly
    assert re.search(rf"^eps=8/255 · apgd-ce: {planned[1]}/{planned[1]} points, robust acc \d+\.\d\d%, \d+ s$",
                     attacked, flags=re.M), attacked
    assert not BAR.search(attacked) and (tmp_path / "clf.json").is_file()
