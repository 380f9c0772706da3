"""The committed leaderboard itself: CI re-checks every published number on a sample of test points.

These tests read the repository's ``leaderboards/`` folder, not a fixture: a result whose checkpoint was
swapped, whose numbers were edited, or that the small tier's plan no longer produces fails CI here.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from randmix_bench.claims import tier_of
from randmix_bench.cli import app
from randmix_bench.data import available_locally, dataset_info
from randmix_bench.entries import Entry, load_entries
from randmix_bench.jobs import JobState, Paths, tier_jobs
from randmix_bench.plans import Tier
from randmix_bench.robustness import BLACK_BOX
from randmix_bench.threads import cpu_threads
from randmix_bench.verify import VerifyOptions, failures, verify

REPO = Path(__file__).resolve().parents[1]
LEADERBOARDS = REPO / "leaderboards"
VERIFY_N = 100  # test points per entry: the whole check stays around a minute on a 2-core CPU
VERIFY_LARGER_N = 20  # points re-attacked on a sampled entry of a larger tier (a ConvMixer-256/8: about a minute)
runner = CliRunner()
DATASETS = sorted(p.name for p in LEADERBOARDS.iterdir() if p.is_dir() and p.name not in ("checkpoints", "figures"))


def need(dataset: str) -> None:
    """Skip, saying how to get it, when ``dataset``'s files are not on this machine (a fresh clone has none)."""
    if not available_locally(dataset):
        pytest.skip(f"{dataset} is not on this machine: put {dataset_info(dataset).where}")


def published_on(dataset: str) -> list[Entry]:
    return [e for e in load_entries(LEADERBOARDS) if e.rel.split("/")[0] == dataset]


def test_the_published_datasets_are_the_folders() -> None:
    assert DATASETS == ["cifar10-jpeg", "fashion-mnist"]


@pytest.mark.slow
def test_every_small_tier_job_is_published() -> None:
    """A fresh clone finds the whole small tier done: `randmix reproduce --tier small` would do nothing."""
    left = [f"{job.kind}:{job.name} ({state.value})" for job in tier_jobs(Tier.SMALL)
            if (state := job.state(Paths(REPO))) is not JobState.DONE]
    assert not left, f"{len(left)} small-tier job(s) not published: {', '.join(left[:5])}"


def is_small(entry: Entry) -> bool:
    """Small-tier (or tierless) entries: cheap enough to re-attack every one on every CI run."""
    return tier_of(entry.checkpoint_ref) in (Tier.SMALL, "other")


def re_attackable(entry: Entry) -> bool:
    """Whether verify re-attacks the entry: it ran a white-box attack (a clean-only or a Square-only entry has none;
    a transfer control has, re-made on its source model)."""
    return entry.is_robustness and any(a not in BLACK_BOX for a in entry.randmix.attack.attacks)


def sampled_for_attack(entries: list[Entry]) -> list[Entry]:
    """The entries CI re-attacks: every small-tier one (seconds each), one of each larger tier's, chosen afresh
    every day (a re-attack of a ConvMixer-256/8 on a 2-core CPU takes minutes; over the days, all get checked)."""
    small = [e for e in entries if is_small(e)]
    larger: dict[str, list[Entry]] = {}
    for e in entries:
        if not is_small(e) and re_attackable(e):
            larger.setdefault(tier_of(e.checkpoint_ref), []).append(e)
    pick = random.Random(dt.date.today().toordinal())
    return small + [pick.choice(sorted(group, key=lambda e: e.rel)) for _, group in sorted(larger.items())]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", DATASETS)
def test_every_published_entry_verifies(dataset: str) -> None:
    """`randmix verify` on every committed entry: checkpoint hashes, the model each file names, clean accuracy
    or PSNR on the first test points; a re-attack with the entry's strongest white-box attack for every
    small-tier entry and a daily sample of each larger tier's (on fewer points)."""
    need(dataset)
    entries = published_on(dataset)
    assert entries, "no published entries"
    attacked = sampled_for_attack(entries)
    small = [e for e in attacked if is_small(e)]
    larger = [e for e in attacked if not is_small(e)]
    rest = [e for e in entries if e not in attacked]
    with cpu_threads(2):  # the whole test set's clean outcomes: every point for the small models, a sample for larger
        checks = verify(small, VerifyOptions(n=VERIFY_N))
        checks += verify([e for e in rest if is_small(e)], VerifyOptions(n=VERIFY_N, robust=False))
        checks += verify([e for e in rest if not is_small(e)], VerifyOptions(n=VERIFY_N, robust=False, full_test=False))
        checks += verify(larger, VerifyOptions(n=VERIFY_LARGER_N, full_test=False))
    assert not failures(checks), "\n".join(failures(checks))
    assert len(checks) == len(entries) + sum(map(re_attackable, attacked))  # each sampled number re-attacked


@pytest.mark.slow
@pytest.mark.parametrize("dataset", DATASETS)
def test_the_verify_command_reads_the_published_folder(dataset: str) -> None:
    """The command CI users run, without the attacks (the test above re-attacks): exit 0 and every entry named."""
    need(dataset)
    entries = published_on(dataset)
    result = runner.invoke(app, ["verify", *(str(e.path) for e in entries), "-n", "20", "--no-robust",
                                 "--no-full-test"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert ("the entry verified" if len(entries) == 1 else f"all {len(entries)} entries verified") in result.output
