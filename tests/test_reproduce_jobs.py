"""``randmix reproduce --jobs N``: job groups in parallel processes give what one process gives, a failure in a
worker stops the run with its message, and the progress lines a background log gets."""

from __future__ import annotations

import io
import queue
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from randmix_bench import plans, reproduce
from randmix_bench.cli import progress as progress_module
from randmix_bench.cli.progress import ReproduceProgress, duration
from randmix_bench.errors import RandmixError
from randmix_bench.files import sha256
from randmix_bench.jobs import AnyJob, JobState, Paths, TrainJob, reads_other_group, tier_jobs
from randmix_bench.plans import Study, Tier
from randmix_bench.recipes import get_recipe
from randmix_bench.threat import Eps
from randmix_bench.vocab import Mixing

TWO_GROUPS = [Study("tiny", "quick", "synthetic", (Mixing.FULL, Mixing.CHANS), (0,), eps=Eps.parse("0.02"),
                    n_examples=8, square_queries=20)]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.epochs: list[tuple[str, int, int]] = []
        self.attacks: list[tuple[str, str, int, int]] = []
        self.done_at_start: list[str] = []

    def jobs_done(self, jobs: list[AnyJob]) -> None:
        assert not self.calls, "the jobs done are reported before any job starts"
        self.done_at_start += [j.name for j in jobs]

    def job_started(self, job: AnyJob, index: int, total: int, state: JobState) -> None:
        self.calls.append(("started", job.name, state.value))

    def job_finished(self, job: AnyJob, state: JobState, seconds: float) -> None:
        self.calls.append(("finished", job.name, state.value))

    def job_epoch(self, job: AnyJob, index: int, epoch: int, epochs: int, loss: float) -> None:
        assert loss == loss and loss >= 0  # a finite training loss, not a placeholder
        self.epochs.append((job.name, epoch, epochs))

    def job_steps(self, job: AnyJob, index: int, epoch: int, epochs: int, step: int, steps: int) -> None:
        assert 1 <= epoch <= epochs and 0 < step < steps  # within an epoch: its last step is its epoch line

    def job_attack(self, job: AnyJob, index: int, label: str, done: int, total: int, robust_acc: float) -> None:
        assert 0 <= robust_acc <= 1
        self.attacks.append((job.name, label, done, total))


@pytest.mark.slow
def test_parallel_groups_train_and_publish_what_one_process_does(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(plans.TIERS, Tier.SMALL, TWO_GROUPS)
    jobs = [j for j in tier_jobs(Tier.SMALL) if j.kind == "train"]  # two groups, one training run each
    assert len({j.group for j in jobs}) == 2
    recorder = Recorder()
    parallel = reproduce.run(jobs, Paths(tmp_path / "parallel"), device="cpu", workers=2, threads=1,
                             reporter=recorder)
    one = reproduce.run(jobs, Paths(tmp_path / "one"), device="cpu", workers=1, threads=1)
    assert [o.job.name for o in parallel] == [j.name for j in jobs] and all(o.ran for o in parallel + one)
    for job in jobs:  # same seed, same thread count: the same weights, whichever process trained them
        assert sha256(Paths(tmp_path / "parallel").checkpoint(Tier.SMALL, job.name)) == \
            sha256(Paths(tmp_path / "one").checkpoint(Tier.SMALL, job.name))
    assert sorted(recorder.calls) == sorted([(k, j.name, "pending") for j in jobs for k in ("started", "finished")])
    epochs = get_recipe("quick").epochs  # each worker's epochs reach the parent's reporter, for a background log
    assert sorted(recorder.epochs) == sorted((j.name, e, epochs) for j in jobs for e in range(1, epochs + 1))
    assert recorder.done_at_start == []
    again_recorder = Recorder()
    again = reproduce.run(jobs, Paths(tmp_path / "parallel"), device="cpu", workers=2, threads=1,
                          reporter=again_recorder)
    assert [o.before for o in again] == [JobState.DONE] * len(jobs) and not any(o.ran for o in again)
    assert again_recorder.done_at_start == [j.name for j in jobs]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_running_evaluation_reports_its_attack_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         workers: int) -> None:
    """Within an hour-long evaluation a background log gets a line per attack batch, from one process or from
    the workers: every attack of the job reports its points up to all of them."""
    monkeypatch.setitem(plans.TIERS, Tier.SMALL, TWO_GROUPS)  # two groups: two workers run side by side
    jobs = [j for j in tier_jobs(Tier.SMALL) if j.kind != "leaderboard"]
    assert [j.kind for j in jobs] == ["train", "eval"] * 2
    recorder = Recorder()
    reproduce.run(jobs, Paths(tmp_path), device="cpu", workers=workers, threads=1, reporter=recorder)
    finished = {(name, label) for name, label, done, total in recorder.attacks if done == total}
    assert {name for name, _ in finished} == {jobs[1].name, jobs[3].name}
    assert len(finished) >= 4  # AutoAttack standard: one label per attack that had points left, per job
    assert all(0 < done <= total for _, _, done, total in recorder.attacks)


def test_progress_lines_of_a_running_job_name_it_and_skip_bursts() -> None:
    out = io.StringIO()
    jobs = [FakeJob("a", 100.0), FakeJob("b", 100.0, kind="eval")]
    progress = ReproduceProgress(Console(file=out, width=300), jobs, workers=2)  # type: ignore[arg-type]
    progress.job_started(jobs[0], 0, 2, JobState.PENDING)
    progress.job_epoch(jobs[0], 0, 3, 10, 0.31234)  # type: ignore[arg-type]
    progress.job_started(jobs[1], 1, 2, JobState.PARTIAL)
    for done in (250, 500, 750, 1000):  # batches replayed from a resume state, all at once
        progress.job_attack(jobs[1], 1, "main · apgd-ce", done, 1000, 0.7)  # type: ignore[arg-type]
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("[1/2] train a: epoch 3/10, loss 0.3123 (")
    assert lines[3].startswith("[2/2] eval b: main · apgd-ce 250/1000 points, robust acc 70.00% (")
    assert lines[4].startswith("[2/2] eval b: main · apgd-ce 1000/1000 points")  # the attack's last, always
    assert len(lines) == 5
    progress.job_finished(jobs[1], JobState.PARTIAL, 30.0)  # b finishes first: its lines all lead with [2/2]
    progress.job_finished(jobs[0], JobState.PENDING, 80.0)
    done = out.getvalue().splitlines()[5:]
    assert [line.split(" | ")[0] for line in done] == ["[2/2] done   eval b in 30 s", "[1/2] done   train a in 80 s"]
    assert "| 1 left" in done[0] and "| 0 left" in done[1]  # how many are left: counted after the bar


def test_a_worker_sends_a_trainings_steps_within_its_epochs_and_the_log_prints_some(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An epoch of half an hour says how far it is: a worker sends the steps done within an epoch (never an epoch's
    last step, which its epoch line reports), throttled by STEP_EVENT_S; the log prints at most one line per
    TRAIN_LINE_S per job, counted from the job's first report or its last epoch line."""
    sent: list[tuple[int, int, int, int]] = []
    reports = reproduce._TrainReports(lambda *a: None, lambda *a: sent.append(a))
    monkeypatch.setattr(reproduce, "STEP_EVENT_S", 0.0)
    reports.start(4, 2, 1)  # resumed after epoch 1 of 2, 4 steps an epoch
    for _ in range(4):
        reports.step(0.1)
    assert sent == [(2, 2, 1, 4), (2, 2, 2, 4), (2, 2, 3, 4)]
    monkeypatch.setattr(reproduce, "STEP_EVENT_S", 3600.0)
    reports.start(4, 2, 0)
    for _ in range(8):
        reports.step(0.1)
    assert len(sent) == 3  # within the hour: nothing more sent

    out = io.StringIO()
    job = FakeJob("u", 100.0)
    progress = ReproduceProgress(Console(file=out, width=300), [job])  # type: ignore[arg-type]
    progress.job_started(job, 0, 1, JobState.PENDING)  # type: ignore[arg-type]
    progress.job_steps(job, 0, 1, 4, 100, 938)  # type: ignore[arg-type]  # the clock starts: no line yet
    monkeypatch.setattr(progress_module, "TRAIN_LINE_S", 0.0)
    progress.job_steps(job, 0, 1, 4, 400, 938)  # type: ignore[arg-type]
    monkeypatch.setattr(progress_module, "TRAIN_LINE_S", 3600.0)
    progress.job_steps(job, 0, 1, 4, 500, 938)  # type: ignore[arg-type]  # within the hour of the last line
    lines = out.getvalue().splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith("[1/1] train u: epoch 1/4, step 400/938 (")


@pytest.mark.slow
def test_a_failing_job_in_a_worker_stops_the_run_with_its_message(tmp_path: Path) -> None:
    missing = get_recipe("quick").override(dataset="cifar10", data_dir=str(tmp_path / "nowhere"))
    jobs = [TrainJob("bad", "g1", Tier.SMALL, missing), TrainJob("bad2", "g2", Tier.SMALL, missing)]
    with pytest.raises(RandmixError, match="train bad2?: .*cifar10"):
        reproduce.run(jobs, Paths(tmp_path), device="cpu", workers=2, threads=1)


class ContendedQueue:
    """A multiprocessing queue as a worker sees it while another worker holds its read lock: a non-blocking get
    raises Empty though groups are left; a blocking one waits its turn and gets them."""

    def __init__(self, items: list[object]) -> None:
        self.items = items

    def get(self, block: bool = True, timeout: float | None = None) -> object:
        if not block:
            raise queue.Empty
        return self.items.pop(0)

    def get_nowait(self) -> object:
        return self.get(block=False)


@dataclass
class DoneJob:
    name: str
    kind: str = "train"
    group: str = "g"

    def state(self, paths: Paths) -> JobState:
        return JobState.DONE


def test_a_worker_takes_groups_until_the_end_mark_even_while_another_holds_the_queue(tmp_path: Path) -> None:
    """Two workers started together used to race for the queue's lock; the loser quit at once, leaving a core idle
    for the whole tier."""
    jobs = [DoneJob("a"), DoneJob("b"), DoneJob("c")]
    events: list[tuple[object, ...]] = []
    sink = SimpleNamespace(put=events.append)
    reproduce._worker(ContendedQueue([[0], [1, 2], None]), sink, jobs, Paths(tmp_path), "cpu", False, None)
    assert [e[:2] for e in events if e[0] == "outcome"] == [("outcome", 0), ("outcome", 1), ("outcome", 2)]


@pytest.mark.parametrize("text", ["0", "-1", "two", "", "1.5", "nan", "100000"])
def test_bad_job_counts_are_refused(text: str) -> None:
    with pytest.raises(RandmixError, match="--jobs must be auto or a count"):
        reproduce.parse_jobs(text, "cpu")


def test_auto_jobs_is_one_per_core_on_the_cpu() -> None:
    from randmix_bench.threads import available_cores

    assert reproduce.parse_jobs("auto", "cpu") == available_cores()
    assert reproduce.parse_jobs("3", "cpu") == 3


@dataclass
class FakeJob:
    name: str
    estimate_s: float
    group: str = "g"
    kind: str = "train"


def test_progress_lines_scale_the_plan_by_measured_times() -> None:
    out = io.StringIO()
    jobs = [FakeJob("a", 100.0, "ga"), FakeJob("b", 100.0, "gb"), FakeJob("c", 200.0, "gc"), FakeJob("d", 50.0, "gd")]
    progress = ReproduceProgress(Console(file=out, width=300), jobs, workers=2)  # type: ignore[arg-type]
    progress.job_started(jobs[3], 3, 4, JobState.DONE)
    progress.job_finished(jobs[3], JobState.DONE, 0.0)  # skipped: no line, no measurement
    progress.job_started(jobs[0], 0, 4, JobState.PENDING)
    progress.job_finished(jobs[0], JobState.PENDING, 150.0)  # 1.5x its estimate
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[1/4] start  train a (pending; plan estimate 1.7 min)")
    assert lines[1].startswith("[1/4] done   train a in 2.5 min | 2 left (1 were already done)")  # a's number
    assert "1.50x the plan's estimates" in lines[1]
    assert progress.eta_s() == pytest.approx(200 * 1.5)  # b and c left, side by side on the two workers
    assert "\x1b" not in out.getvalue()  # plain text for a log


def test_jobs_done_when_the_run_begins_are_not_left_from_the_first_line() -> None:
    """With --jobs the groups already done are reached after the parallel part: before they were reported at the
    start, a resumed medium tier's log counted 30 finished jobs as left and gave twice the time to go."""
    out = io.StringIO()
    jobs = [FakeJob("a", 100.0), FakeJob("b", 100.0), FakeJob("c", 200.0)]
    progress = ReproduceProgress(Console(file=out, width=300), jobs, workers=1)  # type: ignore[arg-type]
    progress.jobs_done([jobs[2]])  # type: ignore[list-item]
    assert progress.eta_s() == pytest.approx(200.0)  # a and b
    progress.job_started(jobs[0], 0, 3, JobState.PENDING)
    progress.job_finished(jobs[0], JobState.PENDING, 100.0)
    assert "| 1 left (1 were already done), about 1.7 min to go" in out.getvalue()
    progress.job_started(jobs[2], 2, 3, JobState.DONE)  # its turn comes: counted once, no line
    progress.job_finished(jobs[2], JobState.DONE, 0.0)
    progress.job_started(jobs[1], 1, 3, JobState.PENDING)
    progress.job_finished(jobs[1], JobState.PENDING, 100.0)
    assert out.getvalue().splitlines()[-1].split(" | ")[1].startswith("0 left (1 were already done), about 0 s")
    assert len(out.getvalue().splitlines()) == 4


def test_a_job_done_at_the_start_that_runs_after_all_is_counted_once_as_run() -> None:
    """An evaluation done when the run began finds itself changed at its turn when --force has just retrained its
    checkpoint: it runs, so it is neither 'already done' nor left out of the time to go."""
    out = io.StringIO()
    jobs = [FakeJob("train", 100.0), FakeJob("eval", 300.0)]
    progress = ReproduceProgress(Console(file=out, width=300), jobs, workers=1)  # type: ignore[arg-type]
    progress.jobs_done([jobs[1]])  # type: ignore[list-item]
    progress.job_started(jobs[0], 0, 2, JobState.CHANGED)
    progress.job_finished(jobs[0], JobState.CHANGED, 100.0)
    assert "| 0 left (1 were already done)" in out.getvalue()  # what was known then
    progress.job_started(jobs[1], 1, 2, JobState.CHANGED)
    assert progress.eta_s() == pytest.approx(300.0, abs=1.0)  # back in the work left
    progress.job_finished(jobs[1], JobState.CHANGED, 300.0)
    assert out.getvalue().splitlines()[-1].split(" | ")[1].startswith("0 left (0 were already done), about 0 s")
    assert (len(progress.left), len(progress.skipped)) == (0, 0)  # both ran: none left, none already done


def test_a_job_resumed_part_way_does_not_scale_the_estimates() -> None:
    """A training resumed at epoch 8 of 10 takes a fifth of its estimate: that says nothing about the jobs left."""
    out = io.StringIO()
    jobs = [FakeJob("a", 100.0), FakeJob("b", 100.0), FakeJob("c", 200.0)]
    progress = ReproduceProgress(Console(file=out, width=300), jobs, workers=1)  # type: ignore[arg-type]
    progress.job_started(jobs[0], 0, 3, JobState.PARTIAL)
    progress.job_finished(jobs[0], JobState.PARTIAL, 20.0)
    assert progress.eta_s() == pytest.approx(300.0)  # the plan's estimates, unscaled
    assert "x the plan's estimates" not in out.getvalue()
    progress.job_started(jobs[1], 1, 3, JobState.PENDING)
    progress.job_finished(jobs[1], JobState.PENDING, 200.0)  # a job run from its start: 2x
    assert progress.eta_s() == pytest.approx(400.0)


def test_a_training_resumed_near_its_end_counts_as_nearly_done() -> None:
    """The 20-epoch study resumed at epoch 14 of 20 said "about 6 h 44 min to go" as its last epochs ended: each
    running training counted its whole estimate less this sitting's time. Its steps say how much is left."""
    out = io.StringIO()
    jobs = [FakeJob("a", 1000.0, "ga"), FakeJob("b", 1000.0, "gb"), FakeJob("eval", 100.0, "gb", "shuffle-eval")]
    progress = ReproduceProgress(Console(file=out, width=300), jobs, workers=2)  # type: ignore[arg-type]
    for i in (0, 1):
        progress.job_started(jobs[i], i, 3, JobState.PARTIAL)
    progress.job_epoch(jobs[0], 0, 19, 20, 0.01)  # a: a twentieth left
    progress.job_steps(jobs[1], 1, 20, 20, 75, 100)  # b: a quarter of its last epoch left
    assert progress.eta_s() == pytest.approx(1000 / 80 + 100)  # b's rest, then its group's evaluation
    progress.job_finished(jobs[1], JobState.PARTIAL, 300.0)
    assert progress.eta_s() == pytest.approx(100.0)  # a's 50 s beside the evaluation
    assert jobs[1].name + " in 5.0 min | 2 left" in out.getvalue()


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (89, "89 s"), (90, "1.5 min"), (5400, "1 h 30 min"),
                                           (36000, "10 h 00 min")])
def test_durations_read_like_a_log(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.slow
def test_a_killed_run_stops_its_workers_and_says_how_to_resume(tmp_path: Path) -> None:
    """SIGTERM (kill, a scheduler's time limit) stops a parallel run as Ctrl-C does: the workers are stopped, one
    line says how to resume, exit code 130, no traceback and no leaked-semaphore warning from multiprocessing."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(reproduce.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "randmix_bench.cli", "reproduce", "--tier", "smoke", "--jobs", "2",
                             "--threads", "1", "--device", "cpu"], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for line in proc.stdout:  # the first job has started in a worker
        if " start " in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "interrupted" in rest and "rerun the same command to resume" in rest
    assert "Traceback" not in rest and "leaked" not in rest


def test_the_time_to_go_follows_the_groups_over_the_workers() -> None:
    """Two workers do not halve the work when one group is most of it: the short groups finish on one worker while
    the long one keeps the other busy (before, the log divided the work by two and promised too early a finish)."""
    jobs = [FakeJob("s1", 100.0, "short1"), FakeJob("long-train", 600.0, "long"), FakeJob("s2", 100.0, "short2"),
            FakeJob("long-eval", 600.0, "long")]
    progress = ReproduceProgress(Console(file=io.StringIO(), width=300), jobs, workers=2)  # type: ignore[arg-type]
    assert progress.eta_s() == pytest.approx(1200.0)  # the long group's two jobs, one after the other
    assert reproduce.makespan([(j.group, j.estimate_s) for j in jobs], 1) == pytest.approx(1400.0)
    progress.job_started(jobs[0], 0, 4, JobState.PENDING)
    progress.job_started(jobs[1], 1, 4, JobState.PENDING)
    progress.job_finished(jobs[0], JobState.PENDING, 100.0)  # as estimated: s2 goes to this worker
    assert progress.eta_s() == pytest.approx(1200.0, abs=1.0)


def test_makespan_hands_out_groups_in_plan_order_to_the_first_free_worker() -> None:
    work = [("a", 30.0), ("b", 10.0), ("c", 10.0), ("d", 10.0), ("a", 5.0)]  # a's second job runs in a's worker
    assert reproduce.makespan(work, 2) == pytest.approx(35.0)  # a: 35 on one worker; b, c, d: 30 on the other
    assert reproduce.makespan(work, 3) == pytest.approx(35.0)
    assert reproduce.makespan(work, 1) == pytest.approx(65.0)
    # plan order, not the best order: c waits for a or b though a smarter split would finish at 20
    assert reproduce.makespan([("a", 10.0), ("b", 10.0), ("c", 20.0)], 2) == pytest.approx(30.0)
    # a running group holds its worker: d (running, 40 left) first, then a, b, c on the other worker in order
    assert reproduce.makespan([("a", 10.0), ("b", 10.0), ("c", 10.0), ("d", 40.0)], 2,
                              running={"d"}) == pytest.approx(40.0)
    assert reproduce.makespan([("a", 10.0), ("b", 10.0), ("c", 10.0), ("d", 40.0)], 2) == pytest.approx(50.0)
    assert reproduce.makespan([("x", 50.0), ("y", 0.0)], 2, running={"x", "y"}) == pytest.approx(50.0)
    assert reproduce.makespan([], 4) == 0.0
    assert reproduce.makespan([("a", 5.0), ("b", 5.0)], 0) == pytest.approx(10.0)  # no worker counts as one


TRANSFER = [Study("tiny", "quick", "synthetic", (Mixing.FULL, Mixing.CHANS), (0,), eps=Eps.parse("0.02"),
                  n_examples=8, square_queries=20, transfer=True, attack_batch=8)]


def test_time_left_runs_transfers_after_every_group_and_the_leaderboard_last(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A transfer attack reads the `full` run's checkpoint, which another group trains: reproduce runs it once
    every group is done, and the time to go adds it after them."""
    monkeypatch.setitem(plans.TIERS, Tier.SMALL, TRANSFER)
    jobs = tier_jobs(Tier.SMALL)
    assert [(j.kind, j.group, reads_other_group(j)) for j in jobs] == [
        ("train", "small-tiny-full-s0", False), ("eval", "small-tiny-full-s0", False),
        ("train", "small-tiny-chans-s0", False), ("eval", "small-tiny-chans-s0", False),
        ("eval", "small-tiny-chans-s0", True), ("leaderboard", "leaderboard", False)]
    seconds = [100.0, 50.0, 100.0, 50.0, 30.0, 5.0]
    work = [(j, s, False) for j, s in zip(jobs, seconds, strict=True)]
    assert reproduce.time_left(work, 1) == pytest.approx(335.0)
    assert reproduce.time_left(work, 2) == pytest.approx(150.0 + 30.0 + 5.0)  # not 150 + 5: chans's group waits
    running = [(j, 0.0 if i < 4 else s, i == 4) for i, (j, s, _) in enumerate(work)]  # the transfer running
    assert reproduce.time_left(running, 2) == pytest.approx(35.0)


def test_shards_leave_the_transfer_attacks_to_the_unsharded_run() -> None:
    jobs = tier_jobs(Tier.MEDIUM)
    transfers = {j.name for j in jobs if reads_other_group(j)}
    assert transfers and all(j.name.endswith("-transfer") for j in jobs if j.name in transfers)
    names = [j.name for i in (1, 2) for j in reproduce.select(jobs, shard=(i, 2))]
    assert not transfers & set(names) and len(names) == len(jobs) - 1 - len(transfers)


@pytest.mark.slow
def test_with_jobs_a_transfer_attack_waits_for_the_training_it_reads(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed run whose `chans` run is trained and whose `full` run is not: before, the `chans` worker went
    straight to its transfer attack beside the `full` training and failed on the missing checkpoint."""
    monkeypatch.setitem(plans.TIERS, Tier.SMALL, TRANSFER)
    jobs = {j.name: j for j in tier_jobs(Tier.SMALL)}
    paths = Paths(tmp_path)
    reproduce.run([jobs["small-tiny-chans-s0"]], paths, device="cpu", threads=1)
    chosen = [jobs["small-tiny-full-s0"], jobs["small-tiny-chans-s0-linf-transfer"]]
    recorder = Recorder()
    outcomes = reproduce.run(chosen, paths, device="cpu", workers=2, threads=1, reporter=recorder)
    assert all(o.ran for o in outcomes)
    assert recorder.calls.index(("finished", "small-tiny-full-s0", "pending")) < \
        recorder.calls.index(("started", "small-tiny-chans-s0-linf-transfer", "pending"))
    transfer, source = jobs["small-tiny-chans-s0-linf-transfer"], paths.checkpoint(Tier.SMALL, "small-tiny-full-s0")
    assert transfer.state(paths) is JobState.DONE
    kept = source.read_bytes()
    source.write_bytes(paths.checkpoint(Tier.SMALL, "small-tiny-chans-s0").read_bytes())  # `full` retrained
    assert transfer.state(paths) is JobState.CHANGED  # its examples were made on weights that are gone
    source.write_bytes(kept)
    assert transfer.state(paths) is JobState.DONE


def test_a_transfer_whose_source_is_neither_trained_nor_selected_is_refused_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(plans.TIERS, Tier.SMALL, TRANSFER)
    jobs = [j for j in tier_jobs(Tier.SMALL) if j.name.startswith("small-tiny-chans")]
    for workers in (1, 2):
        with pytest.raises(RandmixError, match=r"eval small-tiny-chans-s0-linf-transfer attacks with the checkpoint "
                                               r"of small-tiny-full-s0, which is not trained yet; add --only "
                                               r"small-tiny-full-s0"):
            reproduce.run(jobs, Paths(tmp_path), device="cpu", workers=workers, threads=1)
    assert list(tmp_path.iterdir()) == []  # nothing trained or written first


def test_a_shard_holding_only_transfer_attacks_is_refused() -> None:
    transfers = [j for j in tier_jobs(Tier.MEDIUM) if reads_other_group(j)]
    with pytest.raises(RandmixError, match="only an unsharded run does"):
        reproduce.select(transfers, shard=(1, 2))
