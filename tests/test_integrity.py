"""Issue #22, integrity round 3: every recorded number is tied to its twin or re-derived from the checkpoint,
runs are keyed by their checkpoint, and the user's files are never replaced.

Each test edits a real result as a hostile user would (alone, or every twin at once) and checks that the
mechanism catches it: the file's own consistency checks on read, ``randmix verify``'s re-derivation, the
leaderboard's run identity, reproduce's job state.
"""

from __future__ import annotations

import errno
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import bomb_png
from safetensors.torch import save_file
from typer.testing import CliRunner

import randmix_bench
from randmix_bench import leaderboard, reproduce
from randmix_bench.checkpoint import FORMAT, METADATA_KEY, read_checkpoint
from randmix_bench.cli import app
from randmix_bench.entries import LeaderboardError, load_entries, load_entry
from randmix_bench.errors import ExistsError, RandmixError
from randmix_bench.files import BusyError, exclusive, sha256
from randmix_bench.jobs import EvalJob, JobState, Paths, tier_jobs
from randmix_bench.result_files import ResultError, read_result
from randmix_bench.results import pct
from randmix_bench.robustness import EvalOptions, evaluate
from randmix_bench.shuffle_eval import evaluate_runs
from randmix_bench.threat import ThreatModel, parse_eps_list
from randmix_bench.verify import VerifyOptions, failures, verify
from randmix_bench.vocab import AAAttack, AAVersion, Attack, Norm, Tier

N = 48


@pytest.fixture(scope="module")
def board_template(tmp_path_factory: pytest.TempPathFactory, train_tiny_checkpoint: Callable[..., Path]) -> Path:
    """``leaderboards/synthetic/Linf/a.json``: a trained model attacked with APGD-CE at 1/255 (most points survive),
    with a sweep, per-point outcomes and the whole test set's clean outcomes."""
    root = tmp_path_factory.mktemp("integrity") / "leaderboards"
    folder = root / "synthetic" / "Linf"
    ckpt = train_tiny_checkpoint(folder / "a.safetensors")
    evaluate(ckpt, "synthetic", EvalOptions(attack=Attack.APGD_CE, threat=ThreatModel.parse("Linf", "1/255"),
                                            n_examples=N, batch_size=N, n_iter=5,
                                            sweep=parse_eps_list("1/255,2/255", Norm.LINF), device="cpu",
                                            out=folder / "a.json"))
    return root


@pytest.fixture()
def board(board_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(board_template, tmp_path / "leaderboards"))


def entry_json(board: Path) -> Path:
    return board / "synthetic" / "Linf" / "a.json"


def edit(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def lower_robust(data: dict, points: int, everywhere: bool) -> None:
    """Robust accuracy lowered by ``points`` points: in the headline only, or in every twin (per-attack, sweep,
    per-point outcomes), as a careful forger would."""
    rb = data["randmix"]
    robust = rb["points"]["robust"]
    flipped = [i for i, r in enumerate(robust) if r][:points]
    assert len(flipped) == points, "the fixture needs robust points to flip"
    acc = (sum(robust) - points) / len(robust)
    rb["robust_acc"], data["autoattack_acc"] = acc, pct(acc)
    if everywhere:
        for i in flipped:
            robust[i] = 0
        rb["per_attack_robust_acc"]["apgd-ce"] = acc
        for point in rb["sweep"]:
            if point["eps"] == data["eps"]:
                point["robust_acc"] = acc
            elif point["eps_value"] > rb["eps_value"]:
                point["robust_acc"] = min(point["robust_acc"], acc)  # the curve may not rise with eps


def test_robust_accuracy_edited_down_alone_is_refused_on_read(board: Path) -> None:
    edit(entry_json(board), lambda d: lower_robust(d, 3, everywhere=False))
    with pytest.raises(ResultError, match="robust_acc"):
        read_result(entry_json(board))


def test_robust_accuracy_edited_down_everywhere_is_caught_by_verify(board: Path) -> None:
    """Every twin agrees, so the file reads; verify re-runs the entry's first attack and finds it left more."""
    edit(entry_json(board), lambda d: lower_robust(d, 10, everywhere=True))
    checks = verify([load_entry(entry_json(board))], VerifyOptions(n=N))
    robust = [c for c in checks if c.metric.startswith("robust")]
    assert robust and not robust[0].ok and "was lowered" in (robust[0].problem or "")


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.update(eps="2/255"), "field 'eps'"),
    (lambda d: d.update(architecture="ResNet-50"), "field 'architecture'"),
    (lambda d: d.update(eps="８/255"), "field 'eps'"),
    (lambda d: d["randmix"]["sweep"][0].update(eps="3/255"), "randmix.sweep"),
    (lambda d: d["randmix"].update(n_examples=1_000_000, points=None), "randmix.n_examples"),
    (lambda d: d["randmix"]["sweep"][0].update(robust_acc=0.0), "randmix.sweep"),
    (lambda d: d["randmix"]["sweep"].append({**d["randmix"]["sweep"][0], "eps": "3/255", "eps_value": 3 / 255})
     or d["randmix"]["sweep"][1].update(robust_acc=0.0), "robust accuracy rises"),
    (lambda d: d["randmix"]["full_test_clean"].__setitem__(0, 1 - d["randmix"]["full_test_clean"][0]),
     "full_test_clean"),
], ids=["eps-string", "architecture", "full-width-eps", "sweep-eps", "n-beyond-the-test-set", "sweep-at-the-same-eps",
        "sweep-rising-with-eps", "full-test-outcome"])
def test_a_number_edited_alone_disagrees_with_its_twin(board: Path, change: Callable[[dict], None],
                                                       field: str) -> None:
    edit(entry_json(board), change)
    with pytest.raises(ResultError, match=field):
        read_result(entry_json(board))


def test_a_copy_relabelled_as_another_run_is_refused_by_the_leaderboard(board: Path) -> None:
    """Runs are keyed by the checkpoint's weights: a copy under another name claiming another training seed is not a
    fourth run, it is refused, naming both files."""
    folder = board / "synthetic" / "Linf"
    shutil.copy(folder / "a.json", folder / "b.json")
    edit(folder / "b.json", lambda d: d["randmix"].update(train_seed=7))
    with pytest.raises(LeaderboardError, match=r"b\.json: claims the checkpoint of synthetic/Linf/a\.json"):
        load_entries(board)
    edit(folder / "b.json", lambda d: d["randmix"].update(train_seed=0))  # a plain re-evaluation: one run, allowed
    entries = load_entries(board)
    assert len({e.run_key for e in entries}) == 1


@pytest.mark.parametrize(("field", "value"), [("train_seed", 5), ("smooth_sigma", 1.0), ("train_epochs", 9),
                                              ("train_recipe", "quick"), ("mixer_seed", 3), ("params_trainable", 100),
                                              ("params_frozen", 0)])
def test_verify_checks_every_label_against_the_checkpoints_own_record(board: Path, field: str, value: object) -> None:
    edit(entry_json(board), lambda d: d["randmix"].update({field: value}))
    (check, *_) = verify([load_entry(entry_json(board))], VerifyOptions(n=16, robust=False))
    assert not check.ok and field in (check.problem or ""), check.problem


def test_verify_recounts_the_whole_test_sets_clean_outcomes(board: Path) -> None:
    """clean_acc_full_test and its per-point outcomes beyond the attacked points, edited alike, are re-measured on
    the whole test set."""
    def flip_beyond_n(d: dict) -> None:
        rb = d["randmix"]
        full = rb["full_test_clean"]
        rb["full_test_clean"] = full[:N] + [1 - c for c in full[N:]]
        rb["clean_acc_full_test"] = sum(rb["full_test_clean"]) / len(full)

    edit(entry_json(board), flip_beyond_n)
    (check, *_) = verify([load_entry(entry_json(board))], VerifyOptions(n=N, robust=False))
    assert not check.ok and "full_test_clean" in (check.problem or ""), check.problem


def flip_full_test(d: dict, indices: list[int]) -> None:
    rb = d["randmix"]
    for i in indices:
        rb["full_test_clean"][i] = 1 - rb["full_test_clean"][i]
    rb["clean_acc_full_test"] = sum(rb["full_test_clean"]) / len(rb["full_test_clean"])


@pytest.mark.parametrize("change", [
    lambda d: flip_full_test(d, [N + 1, N + 3, N + 5]),
    lambda d: d["randmix"].update(full_test_clean=None, clean_acc_full_test=d["randmix"]["clean_acc_full_test"] - 0.03),
], ids=["three-outcomes-between-samples", "outcomes-dropped-mean-moved"])
def test_verify_rederives_clean_acc_full_test_from_every_point(board: Path, change: Callable[[dict], None]) -> None:
    """A few outcomes flipped where a fixed sample of the test set would not look, or the outcomes dropped (a file
    written before they were recorded) and the mean moved by 3 points, which a sample's tolerance would cover: both
    are caught, as every test point is predicted again (and --no-full-test samples at random, so it cannot be
    dodged either)."""
    edit(entry_json(board), change)
    (check, *_) = verify([load_entry(entry_json(board))], VerifyOptions(n=N, robust=False))
    assert not check.ok and "every test point" in (check.problem or ""), check.problem


@pytest.fixture(scope="module")
def two_attacks_template(tmp_path_factory: pytest.TempPathFactory, train_tiny_checkpoint: Callable[..., Path]) -> Path:
    """``leaderboards/synthetic/Linf/a.json``: APGD-CE then APGD-T at 1/255, swept up to 8/255."""
    folder = tmp_path_factory.mktemp("two-attacks") / "leaderboards" / "synthetic" / "Linf"
    ckpt = train_tiny_checkpoint(folder / "a.safetensors")
    evaluate(ckpt, "synthetic", EvalOptions(attack=Attack.AUTOATTACK, version=AAVersion.CUSTOM,
                                            attacks=(AAAttack.APGD_CE, AAAttack.APGD_T),
                                            threat=ThreatModel.parse("Linf", "1/255"), n_examples=N, batch_size=N,
                                            n_iter=5, sweep=parse_eps_list("1/255,8/255", Norm.LINF), device="cpu",
                                            out=folder / "a.json"))
    return folder / "a.json"


@pytest.fixture()
def two_attacks(two_attacks_template: Path, tmp_path: Path) -> Path:
    shutil.copytree(two_attacks_template.parents[2], tmp_path / "leaderboards")
    return tmp_path / "leaderboards" / "synthetic" / "Linf" / "a.json"


def test_an_honest_entry_with_two_attacks_and_a_sweep_verifies(two_attacks: Path) -> None:
    assert not failures(verify([load_entry(two_attacks)], VerifyOptions(n=N)))


def test_verify_re_attacks_the_points_recorded_as_broken(two_attacks: Path) -> None:
    """The first attack's number left alone, the later attack's number, the headline and the per-point outcomes
    lowered together: the file reads and the first attack re-run agrees with it, but the points recorded as broken
    survive every attack of the entry when verify attacks them."""
    def lower_after_the_first_attack(d: dict) -> None:
        rb = d["randmix"]
        robust = rb["points"]["robust"]
        for i in [i for i, r in enumerate(robust) if r][:10]:
            robust[i] = 0
        acc = sum(robust) / len(robust)
        rb["robust_acc"], d["autoattack_acc"], rb["per_attack_robust_acc"]["apgd-t"] = acc, pct(acc), acc
        rb["sweep"][0]["robust_acc"] = acc

    edit(two_attacks, lower_after_the_first_attack)
    robust = [c for c in verify([load_entry(two_attacks)], VerifyOptions(n=N)) if c.metric.startswith("robust")]
    assert robust and "recorded as broken" in (robust[0].problem or ""), robust


def test_verify_re_attacks_the_sweep(two_attacks: Path) -> None:
    """The curve's point at 8/255 raised to the headline's accuracy (the curve may stay flat, never rise): the file
    reads, verify's re-attack at 8/255 leaves far fewer points."""
    edit(two_attacks, lambda d: d["randmix"]["sweep"][1].update(robust_acc=d["randmix"]["robust_acc"]))
    robust = [c for c in verify([load_entry(two_attacks)], VerifyOptions(n=N)) if c.metric.startswith("robust")]
    assert robust and "the sweep's recorded robust accuracy at eps 8/255" in (robust[0].problem or ""), robust


def test_verify_finds_one_checkpoint_re_saved_as_another_run(board: Path) -> None:
    """A copy of a checkpoint re-saved with another training seed in its metadata (same weights, another file
    sha256) and a result that records no weights digest: the leaderboard sees two runs, verify hashes the weights."""
    folder = board / "synthetic" / "Linf"
    state, meta = read_checkpoint(folder / "a.safetensors")
    record = {"format": FORMAT, **meta, "extra": {**meta["extra"], "train": {**meta["extra"]["train"], "seed": 7}}}
    save_file(state, str(folder / "b.safetensors"), metadata={METADATA_KEY: json.dumps(record)})
    shutil.copy(folder / "a.json", folder / "b.json")
    edit(folder / "b.json", lambda d: d["randmix"].update(
        train_seed=7, checkpoint={"path": "b.safetensors", "sha256": sha256(folder / "b.safetensors")}))
    entries = load_entries(board)
    assert len({e.run_key for e in entries}) == 2  # what the leaderboard alone can tell
    failed = failures(verify(entries, VerifyOptions(n=N, robust=False)))
    assert len(failed) == 1 and "b.json" in failed[0] and "holds the weights of synthetic/Linf/a.json" in failed[0]


def test_verify_checks_the_attacks_against_the_version(board: Path) -> None:
    """Tables label an entry by its AutoAttack version: one attack relabelled as AutoAttack standard is caught."""
    edit(entry_json(board), lambda d: d["randmix"]["attack"].update(attack="autoattack", version="standard",
                                                                     n_iter=None))
    (check, *_) = verify([load_entry(entry_json(board))], VerifyOptions(n=16, robust=False))
    assert not check.ok and "autoattack standard runs apgd-ce, apgd-t" in (check.problem or ""), check.problem


@pytest.mark.parametrize("options", [{"sigmas": math.nan}, {"sigmas": -1.0}, {"batch_size": 0}, {"n": 0}])
def test_verify_refuses_a_nan_tolerance_or_an_empty_batch(options: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        VerifyOptions(**options)


# ----------------------------------------------------------------------------------------- the user's files


def test_leaderboard_replaces_only_what_it_generated(board: Path) -> None:
    (board / "README.md").write_text("# my notes\n")
    with pytest.raises(LeaderboardError, match="was not generated by randmix leaderboard"):
        leaderboard.write(board)
    assert (board / "README.md").read_text() == "# my notes\n"
    (board / "README.md").unlink()
    (board / "figures").mkdir()
    (board / "figures" / "mine.png").write_bytes(b"\x89PNG my own picture")
    leaderboard.write(board)
    assert (board / "figures" / "mine.png").read_bytes() == b"\x89PNG my own picture"  # never deleted
    leaderboard.write(board)  # a second run replaces its own files without complaint


def test_a_figures_folder_that_is_a_symlink_is_refused(board: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.png").write_bytes(b"\x89PNG")
    (board / "figures").symlink_to(outside)
    with pytest.raises(LeaderboardError, match="is a symlink"):
        leaderboard.write(board)
    assert (outside / "keep.png").exists()


@pytest.mark.parametrize("make", [lambda p: p.write_bytes(b"\x89PNG my own picture"), os.mkfifo,
                                  lambda p: bomb_png(p, 30_000, 30_000)], ids=["png", "fifo", "bomb"])
def test_leaderboard_leaves_a_users_png_in_its_figures_folder_unread_and_untouched(board: Path,
                                                                                  make: Callable[[Path], None]) -> None:
    """A chart is recognised by the mark in its header: a FIFO is never opened (it would block) and a huge image never
    decoded (it would take gigabytes), so both are simply not ours."""
    (board / "figures").mkdir()
    make(board / "figures" / "mine.png")
    def identity(path: Path) -> tuple[int, ...]:  # all but the access time, which reading a header may update
        st = path.lstat()
        return st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    before = identity(board / "figures" / "mine.png")
    leaderboard.write(board)  # a FIFO opened would block here: never opened is what this line proves
    assert not leaderboard.stale(board) and identity(board / "figures" / "mine.png") == before


def test_a_png_no_result_names_is_never_shown_as_a_grid(board: Path) -> None:
    """The leaderboard shows the grids that shuffle results name: a picture (or a FIFO) dropped into a shuffle folder
    would pass for what a result's models reconstructed."""
    folder = board / "synthetic" / "shuffle"
    folder.mkdir()
    (folder / "mine.png").write_bytes(b"\x89PNG my own picture")
    os.mkfifo(folder / "fifo.png")
    text = leaderboard.pages(board)[board / "README.md"]
    assert "mine" not in text and "fifo" not in text


def test_a_huge_generated_page_is_stale_without_being_read(board: Path) -> None:
    """A README.md of 20 GB (sparse: no disk used) that starts with the generated mark is compared by its size, never
    read into memory."""
    page = board / "README.md"
    with open(page, "wb") as f:
        f.write(leaderboard.GENERATED_MARK.encode())
        f.truncate(20 << 30)
    assert page in leaderboard.stale(board)


def test_a_generated_file_that_is_a_fifo_is_refused_not_read(board: Path) -> None:
    os.mkfifo(board / "FINDINGS.md")
    with pytest.raises(RandmixError, match="FINDINGS.md is not a regular file"):
        leaderboard.write(board)


def test_shuffle_force_replaces_only_its_own_grid_and_result(save_unshuffler: Callable[..., Path],
                                                             tmp_path: Path) -> None:
    """--force replaces what an earlier evaluation wrote, never the user's grid.png or JSON; refused before any
    work, so a refusal leaves no grid drawn either."""
    run, out = save_unshuffler(tmp_path / "run", "chans"), tmp_path / "out"
    out.mkdir()
    (out / "grid.png").write_bytes(b"\x89PNG my own picture")
    with pytest.raises(ExistsError, match="grid.png exists and is not a grid randmix shuffle eval drew"):
        evaluate_runs([run], out, n_examples=8, grid_images=2, force=True)
    assert [p.name for p in out.iterdir()] == ["grid.png"] and (out / "grid.png").read_bytes().endswith(b"picture")
    (out / "grid.png").unlink()
    (out / "run.json").write_text('{"my": "notes"}')
    with pytest.raises(ExistsError, match="run.json exists and is not a result randmix wrote"):
        evaluate_runs([run], out, n_examples=8, grid_images=2, force=True)
    assert [p.name for p in out.iterdir()] == ["run.json"]
    (out / "run.json").unlink()
    evaluate_runs([run], out, n_examples=8, grid_images=2)
    evaluate_runs([run], out, n_examples=8, grid_images=2, force=True)  # its own outputs: replaced


@pytest.mark.parametrize("make", [os.mkfifo, lambda p: p.write_text("[" * 100_000 + "]" * 100_000)],
                         ids=["fifo", "nested-100000-deep"])
def test_a_run_record_beside_a_shuffle_checkpoint_is_read_safely(save_unshuffler: Callable[..., Path], tmp_path: Path,
                                                                 make: Callable[[Path], None]) -> None:
    """shuffle eval looks for the training-loss trace in the run.json beside a checkpoint that recorded none: a FIFO
    there is never opened (it would block) and absurd nesting is not ours; the evaluation goes on without a trace."""
    run = save_unshuffler(tmp_path / "run", "chans")
    make(run / "run.json")
    evaluate_runs([run], tmp_path / "out", n_examples=8, grid_images=2)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["train_loss"] is None


def test_shuffle_evaluations_share_a_folder_but_never_a_file(save_unshuffler: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    """reproduce evaluates its seeds in parallel into one folder (a lock on the folder made the second fail and
    stop the study): each evaluation locks the files it writes, so one of other runs goes ahead beside another,
    and a second one of the same run fails at once and writes nothing."""
    a, b, out = save_unshuffler(tmp_path / "a", "chans"), save_unshuffler(tmp_path / "b", "chans"), tmp_path / "out"
    with exclusive(out / "a.json", "a concurrent evaluation"):
        with pytest.raises(BusyError, match=r"--out-dir .*out \(a\.json\)"):
            evaluate_runs([a], out, n_examples=8, grid_images=2, grid_name="a.png")
        assert [p.name for p in out.iterdir()] == [".a.json.lock"]
        evaluate_runs([b], out, n_examples=8, grid_images=2, grid_name="b.png")
    assert sorted(p.name for p in out.iterdir()) == ["b.json", "b.png"]
    with exclusive(out / "grid.png", "a concurrent evaluation"):  # other runs, but the same grid
        with pytest.raises(BusyError, match=r"\(grid\.png\)"):
            evaluate_runs([a], out, n_examples=8, grid_images=2)
    assert sorted(p.name for p in out.iterdir()) == ["b.json", "b.png"]


def test_a_failed_shuffle_evaluation_leaves_no_folder(save_unshuffler: Callable[..., Path], tmp_path: Path) -> None:
    """The locks made the output folder; a failure after them (here too few test images) takes it away again."""
    run = save_unshuffler(tmp_path / "run", "chans")
    with pytest.raises(RandmixError, match="more than the 8 test images"):
        evaluate_runs([run], tmp_path / "new" / "out", n_examples=8, grid_images=9)
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_reproduce_counts_a_result_edited_by_hand_as_changed(train_tiny_checkpoint: Callable[..., Path],
                                                             tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    job = EvalJob("run-clean", "run", "run", Tier.SMALL, "synthetic", ThreatModel.parse("Linf"), 32, attack=Attack.NONE)
    train_tiny_checkpoint(paths.checkpoint(Tier.SMALL, "run"))
    assert job.state(paths) is JobState.PENDING
    job.run(paths, "cpu", False, None)
    assert job.state(paths) is JobState.DONE
    out = job.output(paths)
    kept = out.read_text()
    edit(out, lambda d: d["randmix"].update(clean_acc=0.5))  # inconsistent: its outcomes count otherwise
    assert job.state(paths) is JobState.CHANGED
    out.write_text(kept)
    edit(out, lambda d: d["randmix"].update(train_seed=9))  # consistent, but not the checkpoint's own record
    assert job.state(paths) is JobState.CHANGED


@pytest.mark.slow
def test_reproduce_force_redoes_a_partial_job_it_cannot_continue(train_tiny_checkpoint: Callable[..., Path],
                                                                  tmp_path: Path) -> None:
    """A partial job whose state is damaged is an error naming --force, and --force redoes it (it used to be
    applied to changed jobs only)."""
    paths = Paths(tmp_path)
    job = EvalJob("run-clean", "run", "run", Tier.SMALL, "synthetic", ThreatModel.parse("Linf"), 32, attack=Attack.NONE)
    train_tiny_checkpoint(paths.checkpoint(Tier.SMALL, "run"))
    job.output(paths).parent.mkdir(parents=True)
    job.output(paths).with_suffix(".eval-state").write_text('{"format": "my own notes"}')
    assert job.state(paths) is JobState.PARTIAL
    with pytest.raises(RandmixError, match="pass --force to discard it"):
        reproduce.run([job], paths, device="cpu")
    reproduce.run([job], paths, device="cpu", force=True)
    assert job.state(paths) is JobState.DONE


def test_a_second_reproduce_on_a_folder_in_use_is_refused(tmp_path: Path) -> None:
    """A job another reproduce (or train) is writing fails at once, naming the folder, before any work."""
    paths = Paths(tmp_path)
    train_job = tier_jobs(Tier.SMOKE)[0]
    with exclusive(paths.run_dir(Tier.SMOKE, train_job.name), "a concurrent reproduce"), \
            pytest.raises(BusyError, match="another randmix process is writing --out"):
        reproduce.run([train_job], paths, device="cpu")
    assert not paths.checkpoint(Tier.SMOKE, train_job.name).exists()


# ------------------------------------------------------------------------------- inputs and the machine's faults


def test_a_full_width_eps_is_normalised_never_stored_verbatim() -> None:
    eps = ThreatModel.parse("Linf", "８/２５５").eps
    assert (eps.text, eps.value) == ("8/255", 8 / 255)
    sweep = parse_eps_list(" ８/255, 0.5 ", Norm.LINF)
    assert [(e.text, e.value) for e in sweep] == [("8/255", 8 / 255), ("0.5", 0.5)]


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_run_saying_running(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills while the checkpoint is written: one line naming the fix, no traceback, no checkpoint, and
    run.json says the run failed (it said "running" while it trained)."""
    from randmix_bench import train as train_module

    def disk_full(path: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(train_module, "save_checkpoint", disk_full)
    monkeypatch.setenv("RANDMIX_OFFLINE", "1")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["train", "-r", "quick", "-o", str(out), "--epochs", "1", "--device", "cpu",
                                      "-q"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "No space left on device" in lines[0], result.output
    assert "free some space" in lines[0] and "Traceback" not in result.output
    assert not (out / "checkpoint.safetensors").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def _at_most_8_kb_per_file() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def test_a_real_short_write_while_training_is_one_line(tmp_path: Path) -> None:
    """A real short write, as on a full disk (the process may write no file past 8 KB, so the first resume state
    fails): torch's and safetensors' own serializers ended it in a RuntimeError traceback; states and checkpoints are
    now serialized in memory and written by the OS, whose error is one line naming the file."""
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(Path(randmix_bench.__file__).parents[1]), RANDMIX_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "randmix_bench.cli", "train", "-r", "quick", "-o", str(out),
                             "--epochs", "1", "--device", "cpu", "-q"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, preexec_fn=_at_most_8_kb_per_file)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "File too large" in lines[0], result.stderr
    assert "resume" in lines[0] or "checkpoint" in lines[0], lines[0]
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert not (out / "checkpoint.safetensors").exists()

