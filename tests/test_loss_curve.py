"""The training-loss curve: recorded by the trainer (and kept on resume), carried into shuffle results from the
checkpoint (or the run.json beside an older one), checked by verify, drawn and judged by the leaderboard."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from randmix_bench import figures, leaderboard, loss_curve
from randmix_bench.checkpoint import load_model, read_checkpoint, save_checkpoint
from randmix_bench.entries import load_entry
from randmix_bench.errors import RandmixError
from randmix_bench.files import sha256
from randmix_bench.findings import FINDINGS_NAME
from randmix_bench.recipes import get_recipe
from randmix_bench.result_files import ResultError, read_result
from randmix_bench.results import ShuffleResult
from randmix_bench.run_folder import RUN_FORMAT
from randmix_bench.shuffle_eval import evaluate_runs
from randmix_bench.train import train
from randmix_bench.verify import VerifyOptions, verify
from randmix_bench.vocab import Mixing

REPO = Path(__file__).resolve().parents[1]
CFG = get_recipe("unshuffle-quick")  # 2 epochs of 16 steps on synthetic data: seconds


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``leaderboards/synthetic/shuffle/``: the checkpoints of two real 2-epoch runs (full, chans; their run folders
    in ``runs/`` beside it) and their results."""
    root = tmp_path_factory.mktemp("loss") / "leaderboards"
    shuffle = root / "synthetic" / "shuffle"
    shuffle.mkdir(parents=True)
    for mixing in (Mixing.FULL, Mixing.CHANS):
        train(CFG.override(mixing=mixing), root.parent / "runs" / mixing, device="cpu")
        shutil.copy(root.parent / "runs" / mixing / "checkpoint.safetensors", shuffle / f"{mixing}.safetensors")
    evaluate_runs([shuffle / "full.safetensors", shuffle / "chans.safetensors"], shuffle, n_examples=32,
                  grid_images=2)
    return root


@pytest.mark.slow
def test_trainer_records_ten_points_per_epoch_and_resume_keeps_them(
        board: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train_killed_after: Callable[..., None]) -> None:
    straight = json.loads((board.parent / "runs" / "chans" / "run.json").read_text())
    cfg = CFG.override(mixing=Mixing.CHANS)
    train_killed_after(1, cfg, tmp_path / "resumed", monkeypatch)
    resumed = train(cfg, tmp_path / "resumed", resume=True, device="cpu")

    steps = straight["steps_per_epoch"]
    for h in straight["history"]:
        trace = h["loss_trace"]
        xs = [x for x, _ in trace]
        assert len(trace) == loss_curve.POINTS_PER_EPOCH and xs == sorted(xs)
        assert h["epoch"] - 1 < xs[0] and xs[-1] < h["epoch"]
        counts = [loss_curve.bins(steps).count(b) for b in range(loss_curve.POINTS_PER_EPOCH)]
        # the epoch's loss is the step-weighted mean of its tenths (each written to 6 significant digits)
        assert sum(c * y for c, (_, y) in zip(counts, trace, strict=True)) / steps == pytest.approx(h["train_loss"],
                                                                                                  rel=1e-5)
    assert [h["loss_trace"] for h in resumed["history"]] == [h["loss_trace"] for h in straight["history"]]
    _, meta = read_checkpoint(tmp_path / "resumed")
    assert meta["extra"]["loss_trace"] == loss_curve.from_history(straight["history"])


def test_an_epoch_shorter_than_the_bins_gives_one_point_per_step() -> None:
    assert loss_curve.bins(3) == [0, 3, 6]
    assert loss_curve.epoch_trace(2, 3, [3.0, 0, 0, 6.0, 0, 0, 9.0, 0, 0, 0]) == [
        [2.166667, 3.0], [2.5, 6.0], [2.833333, 9.0]]


@pytest.mark.slow
def test_shuffle_eval_copies_the_checkpoints_trace_and_the_result_round_trips(board: Path, tmp_path: Path) -> None:
    shuffle = board / "synthetic" / "shuffle"
    for mixing in ("full", "chans"):
        result = read_result(shuffle / f"{mixing}.json")
        assert isinstance(result, ShuffleResult)
        _, meta = read_checkpoint(shuffle / f"{mixing}.safetensors")
        assert result.train_loss is not None and [list(p) for p in result.train_loss] == meta["extra"]["loss_trace"]
        copy = tmp_path / f"{mixing}.json"
        copy.write_text(result.model_dump_json())
        assert read_result(copy) == result


def test_published_results_load_with_and_without_a_trace() -> None:
    """The small tier's results predate traces and still load; the medium tier's carry one per run, read and
    validated with the result (ten points an epoch, none past the epochs trained)."""
    results = [read_result(path) for path in sorted((REPO / "leaderboards").glob("*/shuffle/*.json"))]
    assert results and all(isinstance(r, ShuffleResult) for r in results)
    shuffles = [r for r in results if isinstance(r, ShuffleResult)]
    assert any(r.train_loss is None for r in shuffles) and any(r.train_loss is not None for r in shuffles)
    for r in shuffles:
        if r.train_loss is not None:
            assert len(r.train_loss) == 10 * r.epochs and r.train_loss[-1][0] <= r.epochs


def _old_run(folder: Path, save_unshuffler: Callable[[Path, str], Path], history: list[dict[str, Any]],
             names_it: bool = True, epochs: int = 2) -> Path:
    """A run folder as an older trainer left it: a checkpoint of ``epochs`` epochs without a trace, and a run.json
    with per-epoch losses that names that checkpoint (or, not ``names_it``, another file)."""
    run = save_unshuffler(folder, "chans")
    model, meta = load_model(run)
    save_checkpoint(run / "checkpoint.safetensors", model, meta["model"], meta["model_kwargs"],
                    {**meta["extra"], "epochs_done": epochs})
    digest = sha256(run / "checkpoint.safetensors") if names_it else "0" * 64
    (run / "run.json").write_text(json.dumps({"format": RUN_FORMAT, "status": "finished", "history": history,
                                              "checkpoint": {"path": "checkpoint.safetensors", "sha256": digest}}))
    return run


def test_an_older_checkpoint_takes_its_trace_from_the_run_json_that_names_it(
        tmp_path: Path, save_unshuffler: Callable[[Path, str], Path]) -> None:
    history = [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25}]
    run = _old_run(tmp_path / "old", save_unshuffler, history)
    (result,) = evaluate_runs([run], tmp_path / "out", n_examples=8, grid_images=2)
    assert result.train_loss == [(0.5, 0.5), (1.5, 0.25)]
    other = _old_run(tmp_path / "other", save_unshuffler, history, names_it=False)  # a run.json of another file
    (result,) = evaluate_runs([other], tmp_path / "out2", n_examples=8, grid_images=2)
    assert result.train_loss is None
    late = _old_run(tmp_path / "late", save_unshuffler, history, epochs=1)  # a history past the checkpoint's epochs
    with pytest.raises(RandmixError, match=r"run.json \(history\): the loss trace is not valid \(its last point is at "
                                           r"epoch 1.5, after the 1 epoch trained\)"):
        evaluate_runs([late], tmp_path / "out3", n_examples=8, grid_images=2)


@pytest.mark.slow
@pytest.mark.parametrize("trace, message", [
    ([[0.5, math.nan]], "finite"),
    ([[0.5, -1.0]], "greater than or equal to 0"),
    ([[0.5, 1.0], [0.4, 0.9]], "strictly increase"),
    ([[0.5, 1.0], [0.5, 0.9]], "strictly increase"),
    ([[0.0, 1.0]], "greater than 0"),
    ([[0.5, 1.0, 2.0]], "at most 2 items"),
    ([], "at least 1 item"),
    ([[9.5, 1.0]], "after the 2 epochs trained"),
    ([[i + 1.0, 1.0] for i in range(loss_curve.MAX_POINTS + 1)], "at most 100000 items"),
])
def test_a_hand_edited_trace_is_refused_on_read(board: Path, tmp_path: Path, edit_result: Callable[[Path, dict], None],
                                                trace: list, message: str) -> None:
    path = tmp_path / "chans.json"
    shutil.copy(board / "synthetic" / "shuffle" / "chans.json", path)
    edit_result(path, {"train_loss": trace})
    with pytest.raises(ResultError, match=message) as e:
        read_result(path)
    assert "train_loss" in str(e.value) and "\n" not in str(e.value)


def test_a_hand_edited_trace_in_a_checkpoint_is_refused_in_one_line(
        tmp_path: Path, save_unshuffler: Callable[[Path, str], Path]) -> None:
    run = save_unshuffler(tmp_path / "run", "chans")
    model, meta = load_model(run)
    save_checkpoint(run / "checkpoint.safetensors", model, meta["model"], meta["model_kwargs"],
                    {**meta["extra"], "loss_trace": [[0.5, -1.0]]})
    with pytest.raises(RandmixError, match=r"metadata loss_trace\): the loss trace is not valid") as e:
        evaluate_runs([run], tmp_path / "out", n_examples=8, grid_images=2)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_verify_checks_the_trace_against_the_checkpoints_record(board: Path, tmp_path: Path,
                                                                edit_result: Callable[[Path, dict], None]) -> None:
    copy = Path(shutil.copytree(board, tmp_path / "leaderboards"))
    path = copy / "synthetic" / "shuffle" / "chans.json"
    options = VerifyOptions(n=8)
    assert all(c.ok for c in verify([load_entry(path)], options))
    trace = json.loads(path.read_text())["train_loss"]
    edit_result(path, {"train_loss": [[x, y / 2] for x, y in trace]})  # a curve that falls further than it did
    (check,) = verify([load_entry(path)], options)
    assert check.problem == "train_loss is not the training-loss trace its checkpoint recorded"


@pytest.mark.slow
def test_the_loss_chart_is_drawn_linked_judged_and_checked_by_its_data(board: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(board, tmp_path / "leaderboards"))
    leaderboard.write(root)
    charts = leaderboard.charts(root)
    (path,) = [p for p, c in charts.items() if isinstance(c, figures.LossChart)]
    chart = charts[path]
    assert isinstance(chart, figures.LossChart)
    assert [(r.name, r.variant) for r in chart.runs] == [("chans", "chans"), ("full", "full")]
    assert figures.read_fingerprint(path) == figures.fingerprint(chart)
    assert f"]({path.relative_to(root).as_posix()})" in (root / "README.md").read_text()
    findings = (root / FINDINGS_NAME).read_text()
    # a power law's share over a last fifth (1 - 0.8 ** 0.2) and the exponent the 2 % rule lets through
    assert "(4.4 % for a = 0.2): by this rule it flattens only if a is below about 0.09," in findings
    for run in chart.runs:
        said = loss_curve.flattened(run.trace)
        assert f"`{run.name}` ({run.variant}) {said}" in findings
    assert leaderboard.stale(root) == []

    altered = figures.LossChart(chart.stem, chart.title, chart.runs[:1])  # a picture of other data
    figures.draw(altered, path)
    assert leaderboard.stale(root) == [path]
    assert leaderboard.write(root) == [path] and leaderboard.stale(root) == []


@pytest.mark.parametrize("trace, said", [
    ([[i / 10, 1.0 + math.exp(-i)] for i in range(1, 21)], "flattened"),  # 1 + e^-16 .. 1 + e^-20
    ([[i / 10, 2.0 - i / 20] for i in range(1, 21)], "still falling (−16.7 % over the last fifth)"),  # 1.2 -> 1.0
    ([[0.5, 1.0], [1.5, 0.5]], "trace too coarse to say"),  # per-epoch points: one in the last fifth
    # flat but for a noisy first and last point of the window (x 8.0 and 10.0): the end points alone fall 5.7 %
    ([[i / 10, {80: 1.05, 100: 0.99}.get(i, 1.0)] for i in range(1, 101)], "flattened"),
    ([[i / 10, 1.0 + i / 500] for i in range(1, 101)], "rising (+3.3 % over the last fifth)"),  # diverging: no flat
    ([[i / 10, 0.0] for i in range(1, 21)], "flattened"),  # a loss of 0 throughout
    ([[1.7, 1e308], [2.0, 1e308]], "flattened"),  # valid however large: no overflow in the fit
    ([[1.6, 0.02], [1.7, 0.01], [1.8, 0.0], [1.9, 0.0], [2.0, 0.0]], "still falling (−100.0 % over the last fifth)"),
    ([[i / 10, 0.0] for i in range(1, 19)] + [[1.9, 2.0], [2.0, 1.0]], "rising (+100.0 % over the last fifth)"),
    (None, "no loss trace recorded"),
])
def test_the_flattened_rule_on_synthetic_traces(trace: list | None, said: str) -> None:
    assert loss_curve.flattened(trace) == said
    trend = loss_curve.trend(trace)  # the verdict agrees with the words
    assert (trend and said.startswith(trend.value)) or (trend is None and said in {"no loss trace recorded",
                                                                                   "trace too coarse to say"})
