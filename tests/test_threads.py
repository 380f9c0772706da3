"""The thread policy (randmix_bench/threads.py): what ``--threads`` accepts, that OpenMP threads wait passively in
every process that imports randmix_bench first, and that a fixed thread count trains the same weights twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from randmix_bench.checkpoint import read_checkpoint
from randmix_bench.errors import RandmixError
from randmix_bench.recipes import get_recipe
from randmix_bench.threads import WAIT_POLICY_ENV, available_cores, cpu_threads, parse_threads
from randmix_bench.train import train

REPO = Path(__file__).resolve().parents[1]


def test_auto_shares_the_cores_this_process_may_use() -> None:
    cores = available_cores()
    assert cores == len(os.sched_getaffinity(0))
    assert parse_threads("auto") == parse_threads(" AUTO ") == cores
    assert parse_threads("auto", jobs=cores) == 1
    assert parse_threads("auto", jobs=10 * cores) == 1  # never 0
    assert parse_threads("1") == parse_threads(1) == 1
    assert parse_threads(str(cores)) == cores


@pytest.mark.parametrize("value", ["0", "-1", "", "nan", "inf", "-inf", "1.5", "1e3", "two", "100000", 0, -4])
def test_bad_thread_counts_are_refused(value: str | int) -> None:
    with pytest.raises(RandmixError, match=r"threads must be in 1\.\.\d+ .* or auto"):
        parse_threads(value)


def test_cpu_threads_restores_the_count() -> None:
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before


def _env_after_import(env: dict[str, str]) -> str:
    code = "import randmix_bench, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    clean = {k: v for k, v in os.environ.items() if k != WAIT_POLICY_ENV}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**clean, **env}, capture_output=True,
                          text=True, check=True, timeout=900).stdout.strip()


def test_threads_wait_passively_unless_the_user_chose() -> None:
    assert _env_after_import({}) == "PASSIVE"
    assert _env_after_import({WAIT_POLICY_ENV: "active"}) == "active"
    # set before torch loads: randmix_bench's first import is the policy module, not torch
    init = (REPO / "randmix_bench" / "__init__.py").read_text()
    assert init.index("prefer_passive_waiting()") < init.index("from randmix_bench import models")


@pytest.mark.slow
def test_same_seed_and_thread_count_train_the_same_weights(tmp_path: Path) -> None:
    cfg = get_recipe("quick").override(epochs=1, batch_size=64, flip=True)
    with cpu_threads(min(2, available_cores())):
        train(cfg, tmp_path / "a", device="cpu")
        train(cfg, tmp_path / "b", device="cpu")
    a, _ = read_checkpoint(tmp_path / "a")
    b, _ = read_checkpoint(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

