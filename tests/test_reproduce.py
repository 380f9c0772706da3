"""``randmix reproduce``: a tier's plan runs once, a second run skips everything, changed settings are
refused, shards split the plan without overlap. A two-study test tier (the tiny ConvMixer and the tiny
unshuffler on the synthetic dataset) runs the real trainer, AutoAttack standard and shuffle eval."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from randmix_bench import plans, reproduce
from randmix_bench.cli import app
from randmix_bench.errors import RandmixError
from randmix_bench.jobs import JobState, Paths, tier_jobs
from randmix_bench.plans import ShuffleStudy, Study, Tier
from randmix_bench.result_files import read_result
from randmix_bench.threat import Eps
from randmix_bench.vocab import Mixing

TEST_TIER = [
    Study("tiny", "quick", "synthetic", (Mixing.CHANS,), (0,), eps=Eps.parse("0.02"), n_examples=8, square_queries=20),
    ShuffleStudy("unshuffle", "unshuffle-quick", "synthetic", (Mixing.FULL,), (0,)),
]


@pytest.fixture
def tier(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setitem(plans.TIERS, Tier.SMALL, TEST_TIER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, ["reproduce", "--tier", "small", "--device", "cpu", *args], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_a_tier_runs_once_then_every_job_is_skipped(tier: Path) -> None:
    invoke()
    entry = read_result(tier / "leaderboards/synthetic/Linf/small-tiny-chans-s0-linf.json")
    assert entry.randmix.sanity is not None and entry.randmix.attack.version == "standard"  # type: ignore[union-attr]
    assert (tier / "leaderboards/checkpoints/small/small-tiny-chans-s0.safetensors").is_file()
    assert read_result(tier / "leaderboards/synthetic/shuffle/small-unshuffle-full-s0.json").mixing == "full"
    assert (tier / "leaderboards/synthetic/shuffle/small-unshuffle-eval-s0.png").is_file()
    assert (tier / "leaderboards/README.md").is_file()

    second = invoke()
    assert "0 job(s) ran, 5 already done" in second
    outcomes = reproduce.run(tier_jobs(Tier.SMALL), Paths())
    assert all(o.before is JobState.DONE for o in outcomes)


@pytest.mark.slow
def test_changed_settings_are_refused_unless_forced(tier: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("--only", "*tiny*")
    monkeypatch.setitem(plans.TIERS, Tier.SMALL, [Study("tiny", "quick", "synthetic", (Mixing.CHANS,), (0,),
                                                        eps=Eps.parse("0.03"), n_examples=8, square_queries=20)])
    jobs = tier_jobs(Tier.SMALL)
    assert [j.state(Paths()).value for j in jobs[:2]] == ["done", "changed"]
    with pytest.raises(RandmixError, match="other settings"):
        reproduce.run(jobs, Paths(), device="cpu")
    result = CliRunner().invoke(app, ["reproduce", "--tier", "small", "--device", "cpu"])
    assert result.exit_code == 2 and "pass --force" in result.output
    invoke("--force", "--only", "eval:*")
    assert read_result(tier / "leaderboards/synthetic/Linf/small-tiny-chans-s0-linf.json").eps == "0.03"


@pytest.mark.slow
def test_a_device_that_cannot_run_is_refused_even_when_every_job_is_done(tier: Path) -> None:
    invoke("--only", "*tiny*")  # nothing left to run for these jobs: the typo must still not pass silently
    result = CliRunner().invoke(app, ["reproduce", "--tier", "small", "--only", "*tiny*", "--device", "meta"])
    assert result.exit_code == 2 and "device 'meta'" in result.output and "Traceback" not in result.output


def test_dry_run_lists_every_job_with_its_state_and_writes_nothing(tier: Path) -> None:
    out = invoke("--dry-run")
    for name in ("small-tiny-chans-s0", "small-tiny-chans-s0-linf", "small-unshuffle-eval-s0", "leaderboard"):
        assert name in out
    assert "pending" in out and list(tier.iterdir()) == []
    two = invoke("--dry-run", "--jobs", "2")  # the time left is shared, group by group, by the processes
    hours = [float(h) for h in re.findall(r"([0-9.]+) h", two.splitlines()[-1])]
    assert "of one process" in two and len(hours) == 2 and hours[0] / 2 - 0.06 <= hours[1] <= hours[0]


def test_shards_split_the_plan_into_disjoint_groups() -> None:
    jobs = tier_jobs(Tier.PAPER)
    shards = [reproduce.select(jobs, shard=(i, 3)) for i in (1, 2, 3)]
    names = [j.name for shard in shards for j in shard]
    assert len(names) == len(set(names)) == len(jobs) - 1  # every job once, the leaderboard in none
    for shard in shards:  # a training run and everything that needs it stay in one process
        assert {j.group for j in shard}.isdisjoint({j.group for other in shards if other is not shard for j in other})
    with pytest.raises(RandmixError):
        reproduce.parse_shard("0/3")
    with pytest.raises(RandmixError, match="matches no job"):
        reproduce.select(jobs, only=["nothing*"])
    groups = len({j.group for j in jobs if j.kind != "leaderboard"})
    assert reproduce.select(jobs, shard=(groups, groups))  # one group per shard: the largest N
    with pytest.raises(RandmixError, match=f"N must be at most {groups}"):  # an empty shard is a mistake
        reproduce.select(jobs, shard=(1, groups + 1))


def test_each_unshuffling_seed_is_a_group_of_its_runs_and_their_evaluation() -> None:
    """--jobs spreads the seeds over the workers: as one group, the medium tier's six unshufflers ran on one worker
    for hours at the end while the other sat idle. A seed's evaluation stays with the runs it reads."""
    jobs = [j for j in tier_jobs(Tier.MEDIUM) if "unshuffle" in j.name]
    groups: dict[str, list[str]] = {}
    for j in jobs:
        groups.setdefault(j.group, []).append(j.name)
    studies = [s for s in plans.TIERS[Tier.MEDIUM] if isinstance(s, ShuffleStudy)]
    assert len(groups) == sum(len(s.seeds) for s in studies) == 3 * len(studies)
    for names in groups.values():
        seed = names[-1].rsplit("-", 1)[1]
        assert names[-1].endswith(f"-eval-{seed}") and all(n.endswith(f"-{seed}") for n in names)


@pytest.mark.slow
def test_a_rerun_of_a_job_gives_the_same_weights_and_the_result_records_them(tier: Path) -> None:
    """Bit-reproducible: the same job on the same CPU with the same thread count gives the same weights digest,
    which the result records beside the file's sha256 (a checkpoint whose metadata changed is the same run)."""
    from randmix_bench.checkpoint import read_checkpoint, weights_digest

    invoke("--only", "*tiny*")
    ckpt = tier / "leaderboards/checkpoints/small/small-tiny-chans-s0.safetensors"
    first = weights_digest(read_checkpoint(ckpt)[0])
    entry = read_result(tier / "leaderboards/synthetic/Linf/small-tiny-chans-s0-linf.json")
    assert entry.randmix.checkpoint.weights_sha256 == first  # type: ignore[union-attr]
    assert entry.randmix.provenance.threads is not None  # type: ignore[union-attr]
    invoke("--only", "train:*tiny*", "--force")  # done jobs are skipped: retrain from a fresh run folder
    ckpt.unlink()
    import shutil
    shutil.rmtree(tier / "runs")
    invoke("--only", "train:*tiny*")
    assert weights_digest(read_checkpoint(ckpt)[0]) == first


@pytest.mark.slow
def test_the_smoke_tier_records_per_point_outcomes_with_a_custom_attack_set(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["reproduce", "--tier", "smoke", "--device", "cpu", "--only", "*chans*"])
    assert result.exit_code == 0, result.output
    rb = read_result(tmp_path / "leaderboards/synthetic/Linf/smoke-tiny-synthetic-chans-s0-linf.json").randmix  # type: ignore[union-attr]
    assert rb.attack.version == "custom" and rb.attack.attacks == ["apgd-ce"] and rb.sanity is not None
    assert rb.points is not None and rb.points.indices == list(range(32))
    assert sum(rb.points.robust) / 32 == rb.robust_acc and sum(rb.points.clean) / 32 == rb.clean_acc
    full = rb.full_test_clean
    assert full is not None and sum(full) / len(full) == rb.clean_acc_full_test
