"""``randmix verify`` on real entries: it passes what the harnesses recorded and catches tampering."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from randmix_bench.cli import app
from randmix_bench.entries import LeaderboardError, load_entries, load_entry
from randmix_bench.robustness import EvalOptions, evaluate
from randmix_bench.shuffle_eval import evaluate_runs
from randmix_bench.verify import DEVICE_FLIPS, VerifyOptions, tolerance, verify
from randmix_bench.vocab import Attack

runner = CliRunner()
N_RECORDED = 64


@pytest.fixture(scope="module")
def board_template(tmp_path_factory: pytest.TempPathFactory, save_classifier: Callable[..., Path],
                   save_unshuffler: Callable[..., Path]) -> Path:
    """Two classifiers scored by ``randmix eval``'s harness (no attack: verify checks clean accuracy)
    and one unshuffler scored by ``randmix shuffle eval``'s."""
    root = tmp_path_factory.mktemp("verify") / "leaderboards"
    linf = root / "synthetic" / "Linf"
    for name, mixing, seed in [("full", "full", 3), ("chans", "chans", 4)]:
        ckpt = save_classifier(linf / f"{name}.safetensors", mixing, seed)
        evaluate(ckpt, "synthetic", EvalOptions(attack=Attack.NONE, n_examples=N_RECORDED, device="cpu", name=name,
                                                out=linf / f"{name}.json"))
    shuffle = root / "synthetic" / "shuffle"
    evaluate_runs([save_unshuffler(shuffle / "unshuffle", "chans")], shuffle, n_examples=N_RECORDED, grid_images=2)
    return root


@pytest.fixture()
def board(board_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(board_template, tmp_path / "leaderboards"))


def edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = data
        for p in parents:
            node = node[p]
        node[key] = value
    path.write_text(json.dumps(data))


def test_recorded_numbers_are_reproduced(board: Path) -> None:
    checks = verify(load_entries(board), VerifyOptions(n=N_RECORDED))
    assert [c.entry for c in checks] == ["synthetic/Linf/chans.json", "synthetic/Linf/full.json",
                                         "synthetic/shuffle/unshuffle.json"]
    assert all(c.ok and c.sha256_ok and c.n_checked == N_RECORDED for c in checks), [c.problem for c in checks]
    for c in checks[:2]:  # same points, same device: the accuracy is reproduced exactly
        assert c.metric == "clean %" and c.measured == pytest.approx(c.recorded)
    assert checks[2].metric == "PSNR dB" and checks[2].measured == pytest.approx(checks[2].recorded, abs=1e-4)


def test_cli_passes_on_a_subset_of_the_recorded_points(board: Path) -> None:
    assert all(c.ok and c.n_checked == 40 for c in verify(load_entries(board), VerifyOptions(n=40)))
    result = runner.invoke(app, ["verify", str(board), "-n", "40"])
    assert result.exit_code == 0, result.output
    assert "all 3 entries verified" in result.output and "Tolerance: 3 × sd" in result.output


def test_wrong_checkpoint_hash_fails(board: Path) -> None:
    edit(board / "synthetic" / "Linf" / "full.json", randmix__checkpoint__sha256="0" * 64)
    (check,) = [c for c in verify(load_entries(board)) if not c.ok]
    assert check.entry == "synthetic/Linf/full.json" and not check.sha256_ok
    assert "is not the recorded 000000000000" in check.problem
    result = runner.invoke(app, ["verify", str(board)])
    assert result.exit_code == 1 and "1 of 3 entries failed verification" in result.output


def test_swapped_checkpoint_fails(board: Path) -> None:
    """Another model's weights under the recorded hashes: the rebuilt model is not the one the entry names (and
    with only the file hash forged, the weights digest already differs)."""
    linf = board / "synthetic" / "Linf"
    shutil.copy(linf / "chans.safetensors", linf / "full.safetensors")
    chans_ref = json.loads((linf / "chans.json").read_text())["randmix"]["checkpoint"]
    edit(linf / "full.json", randmix__checkpoint__sha256=chans_ref["sha256"])
    with pytest.raises(LeaderboardError, match="claims the checkpoint of synthetic/Linf/chans.json"):
        load_entries(board)  # two entries, one checkpoint file, other labels: refused as a whole
    (check,) = verify([load_entry(linf / "full.json")])  # the entry alone: verify finds the swap
    assert not check.ok and "the weights of" in check.problem
    edit(linf / "full.json", randmix__checkpoint__weights_sha256=chans_ref["weights_sha256"])
    (check,) = verify([load_entry(linf / "full.json")])
    assert not check.ok and "checkpoint holds randmix_convmixer_tiny (chans)" in check.problem


def inflate(path: Path, which: str, points: int) -> float:
    """Hand-edit a result as a careful forger would: ``points`` more correct (``clean``) or robust points, in the
    per-point outcomes and in every accuracy that counts them; returns the new fraction."""
    data = json.loads(path.read_text())
    rb = data["randmix"]
    outcomes = rb["points"][which]
    flippable = [i for i, v in enumerate(outcomes) if not v and (which == "clean" or rb["points"]["clean"][i])]
    for i in flippable[:points]:
        outcomes[i] = 1
    fraction = sum(outcomes) / len(outcomes)
    field = "clean_acc" if which == "clean" else "robust_acc"
    rb[field] = fraction
    data["clean_acc" if which == "clean" else "autoattack_acc"] = f"{100 * fraction:.2f}"
    if which == "robust":
        rb["per_attack_robust_acc"] = {a: fraction for a in rb["per_attack_robust_acc"]}
    path.write_text(json.dumps(data))
    return fraction


def test_inflated_clean_accuracy_fails(board: Path) -> None:
    path = board / "synthetic" / "Linf" / "chans.json"
    recorded = json.loads(path.read_text())["randmix"]["clean_acc"]
    raised = inflate(path, "clean", round(0.4 * N_RECORDED))
    assert raised - recorded == pytest.approx(0.4, abs=1 / N_RECORDED)
    # no attack ran, so robust = clean; the whole test set's outcomes start with these points: forged alike
    data = json.loads(path.read_text())
    rb = data["randmix"]
    rb["points"]["robust"], rb["robust_acc"], data["autoattack_acc"] = rb["points"]["clean"], raised, data["clean_acc"]
    rb["full_test_clean"][:N_RECORDED] = rb["points"]["clean"]
    rb["clean_acc_full_test"] = sum(rb["full_test_clean"]) / len(rb["full_test_clean"])
    path.write_text(json.dumps(data))
    (check,) = [c for c in verify(load_entries(board), VerifyOptions(n=32)) if c.entry.endswith("chans.json")]
    assert not check.ok and check.sha256_ok and abs(check.measured - 100 * recorded) <= check.tolerance
    assert f"vs recorded {100 * raised:.2f} on {N_RECORDED}" in check.problem


def test_inflated_psnr_fails(board: Path) -> None:
    path = board / "synthetic" / "shuffle" / "unshuffle.json"
    recorded = json.loads(path.read_text())["psnr"]
    edit(path, psnr=recorded + 1.0)
    (check,) = verify([load_entry(path)])
    assert not check.ok and check.metric == "PSNR dB" and check.measured == pytest.approx(recorded, abs=1e-4)
    result = runner.invoke(app, ["verify", str(path)])  # a single result file works too
    assert result.exit_code == 1 and "1 of 1 entries failed verification" in result.output


def test_tolerance_is_sampling_error_plus_device_allowance() -> None:
    allowance = 100 * DEVICE_FLIPS / 500
    assert tolerance(40.0, 500, 500, allowance) == allowance  # the same points: only the device allowance
    expected = 3 * 40.0 * math.sqrt((10000 - 500) / (500 * 9999)) + allowance
    assert tolerance(40.0, 500, 10000, allowance) == pytest.approx(expected)
    assert tolerance(40.0, 100, 10000, 0) > tolerance(40.0, 500, 10000, 0)


@pytest.fixture(scope="module")
def attacked_template(tmp_path_factory: pytest.TempPathFactory, train_tiny_checkpoint: Callable[..., Path]) -> Path:
    """One entry written by the real ``randmix eval`` command: the trained tiny model under APGD-CE."""
    root = tmp_path_factory.mktemp("verify-robust") / "leaderboards"
    linf = root / "synthetic" / "Linf"
    ckpt = train_tiny_checkpoint(linf / "attacked.safetensors")
    result = runner.invoke(app, ["eval", str(ckpt), "-d", "synthetic", "--version", "custom", "--attacks", "apgd-ce",
                                 "--n-iter", "5", "--eps", "8/255", "--n-examples", "16", "--batch-size", "16",
                                 "--device", "cpu", "--out", str(linf / "attacked.json")])
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.slow
def test_robust_accuracy_is_re_attacked_and_a_raised_one_fails(attacked_template: Path, tmp_path: Path) -> None:
    board = Path(shutil.copytree(attacked_template, tmp_path / "leaderboards"))
    path = board / "synthetic" / "Linf" / "attacked.json"
    clean, robust = verify(load_entries(board))
    assert clean.ok and clean.metric == "clean %" and robust.ok and robust.metric == "robust % (apgd-ce)"
    recorded = json.loads(path.read_text())["randmix"]["robust_acc"]
    assert 0 < recorded < 1 and robust.measured == pytest.approx(100 * recorded)  # same points, seed, batch: reproduced
    result = runner.invoke(app, ["verify", str(board)], terminal_width=300)
    assert result.exit_code == 0 and "the entry verified" in result.output and "one-sided" in result.output

    raised = inflate(path, "robust", 4)  # hand-edited, consistently in every place that counts it
    assert raised > recorded
    (_, check) = verify(load_entries(board))
    assert not check.ok and 100 * raised - check.measured > check.tolerance
    assert check.problem.startswith("robust check: recorded robust accuracy")
    result = runner.invoke(app, ["verify", str(board)], terminal_width=300)
    assert result.exit_code == 1 and "robust check" in result.output and "1 of 1 entries failed" in result.output
    assert runner.invoke(app, ["verify", str(board), "--no-robust"]).exit_code == 0  # the clean check alone passes

    shutil.copy(attacked_template / "synthetic" / "Linf" / "attacked.json", path)
    edit(path, autoattack_acc=f"{100 * raised:.2f}")  # only the headline raised: refused when the file is read
    with pytest.raises(LeaderboardError, match="autoattack_acc.*is not randmix.robust_acc"):
        load_entries(board)


@pytest.mark.slow
def test_a_transfer_entry_is_re_attacked_on_its_source_model(attacked_template: Path, tmp_path: Path,
                                                              train_tiny_checkpoint: Callable[..., Path]) -> None:
    """A transfer control's number comes from examples made on another model: verify re-makes them there (a
    white-box re-attack of the judged model breaks far more points and failed every honest transfer entry), and
    a source checkpoint swapped for another fails."""
    board = Path(shutil.copytree(attacked_template, tmp_path / "leaderboards"))
    linf = board / "synthetic" / "Linf"
    source = train_tiny_checkpoint(linf / "source.safetensors", mixing="full")
    result = runner.invoke(app, ["eval", str(linf / "attacked.safetensors"), "-d", "synthetic", "--attack", "transfer",
                                 "--transfer-from", str(source), "--eps", "8/255", "--n-examples", "16",
                                 "--batch-size", "16", "--device", "cpu", "--out", str(linf / "transfer.json")])
    assert result.exit_code == 0, result.output
    entries = [e for e in load_entries(board) if e.rel.endswith("transfer.json")]
    assert entries[0].source == source.resolve()
    clean, robust = verify(entries)
    recorded = json.loads((linf / "transfer.json").read_text())["randmix"]["robust_acc"]
    assert clean.ok and robust.ok and robust.measured == pytest.approx(100 * recorded)  # the same examples, re-made

    shutil.copy(linf / "attacked.safetensors", source)  # another model under the source's name
    [check] = verify([e for e in load_entries(board) if e.rel.endswith("transfer.json")])
    assert not check.ok and "sha256 of the transfer source" in check.problem


# ------------------------------------------------------------------------------------- progress, log, fail-fast


def test_cli_reports_each_entry_as_it_is_checked(board: Path) -> None:
    result = runner.invoke(app, ["verify", str(board)], terminal_width=300)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("[")]
    assert [line.split()[0:3] for line in lines] == [["[1/3]", "ok", "synthetic/Linf/chans.json"],
                                                     ["[2/3]", "ok", "synthetic/Linf/full.json"],
                                                     ["[3/3]", "ok", "synthetic/shuffle/unshuffle.json"]]
    started = [line for line in result.output.splitlines() if line.startswith("checking ")]  # not a terminal: lines
    assert started == [f"checking synthetic/{rel}"
                       for rel in ("Linf/chans.json", "Linf/full.json", "shuffle/unshuffle.json")]


def test_fail_fast_stops_at_the_first_failing_entry(board: Path) -> None:
    edit(board / "synthetic" / "Linf" / "chans.json", randmix__checkpoint__sha256="0" * 64)  # the first entry
    result = runner.invoke(app, ["verify", str(board), "--fail-fast"], terminal_width=300)
    assert result.exit_code == 1
    assert "[1/3] FAIL synthetic/Linf/chans.json" in result.output and "full.json" not in result.output
    assert "1 of 1 entries failed verification (stopped there: --fail-fast)" in result.output


def test_an_interrupted_run_keeps_its_log_and_a_rerun_continues(board: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import randmix_bench.verify as verify_module

    log, real = tmp_path / "verify.log", verify_module.verify_entry
    seen: list[str] = []

    def interrupted_at_the_second(entry, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(entry.rel)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(entry, *args, **kwargs)

    monkeypatch.setattr(verify_module, "verify_entry", interrupted_at_the_second)
    result = runner.invoke(app, ["verify", str(board), "--log", str(log)], terminal_width=300)
    assert result.exit_code == 130 and "interrupted after 1 of 3 entries" in result.output
    assert [json.loads(line)["entry"] for line in log.read_text().splitlines()] == ["synthetic/Linf/chans.json"]

    seen.clear()
    monkeypatch.setattr(verify_module, "verify_entry", lambda entry, *a, **k: seen.append(entry.rel) or real(entry, *a,
                                                                                                          **k))
    result = runner.invoke(app, ["verify", str(board), "--log", str(log)], terminal_width=300)
    assert result.exit_code == 0 and "all 3 entries verified" in result.output, result.output
    assert seen == ["synthetic/Linf/full.json", "synthetic/shuffle/unshuffle.json"]  # the first came from the log

    seen.clear()
    full = board / "synthetic" / "Linf" / "full.json"
    edit(full, clean_acc=json.loads(full.read_text())["clean_acc"])  # the same values, but another file
    assert runner.invoke(app, ["verify", str(board), "--log", str(log)]).exit_code == 0
    assert seen == ["synthetic/Linf/full.json"]
    seen.clear()
    assert runner.invoke(app, ["verify", str(board), "--log", str(log), "-n", "40"]).exit_code == 0
    assert len(seen) == 3  # other options: nothing is taken from the log


@pytest.mark.parametrize("content", ["not json\n", '{"entry": 1}\n', "[]\n"])
def test_a_file_that_is_not_a_verify_log_is_refused(board: Path, tmp_path: Path, content: str) -> None:
    log = tmp_path / "verify.log"
    log.write_text(content)
    result = runner.invoke(app, ["verify", str(board), "--log", str(log)])
    assert result.exit_code == 2 and "is not a verify log" in result.output and "Traceback" not in result.output
    assert log.read_text() == content
