"""Attack batches in forked processes (``robustness/forked.py``): the outcomes one process gives, every batch
attacked once, a child's error or death one line in the parent, and a killed parallel evaluation that resumes."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from randmix_bench.checkpoint import load_model
from randmix_bench.data import load_split
from randmix_bench.errors import RandmixError
from randmix_bench.robustness import EvalOptions, ProgressReporter, evaluate, make_attack_config, robust_accuracy
from randmix_bench.robustness.forked import attack_batches
from randmix_bench.threat import ThreatModel
from randmix_bench.vocab import AAAttack, AAVersion, Attack

BATCHES = [(b, [10 * b, 10 * b + 1]) for b in range(5)]


def _pid(idx: list[int]) -> list[int]:
    return [os.getpid(), *idx]


def test_every_batch_is_attacked_once_in_a_child_process() -> None:
    seen = {b: broken for b, broken, _ in attack_batches(_pid, BATCHES, processes=2)}
    assert sorted(seen) == [b for b, _ in BATCHES]
    assert all(seen[b][1:] == idx for b, idx in BATCHES)
    pids = {broken[0] for broken in seen.values()}
    assert len(pids) == 2 and os.getpid() not in pids


def test_one_process_attacks_in_order_here() -> None:
    assert [(b, broken) for b, broken, _ in attack_batches(_pid, BATCHES, processes=1)] == \
        [(b, [os.getpid(), *idx]) for b, idx in BATCHES]


def _refuse(idx: list[int]) -> list[int]:
    raise RandmixError(f"batch {idx} refused")


def _crash(idx: list[int]) -> list[int]:
    raise ZeroDivisionError("inside the attack")


def _die(idx: list[int]) -> list[int]:
    os.kill(os.getpid(), signal.SIGKILL)
    return idx


@pytest.mark.parametrize(("attack_one", "error", "message"), [
    (_refuse, RandmixError, r"batch \[\d+, \d+\] refused"),
    (_crash, RuntimeError, "ZeroDivisionError: inside the attack"),
    (_die, RandmixError, "an attack process died"),
])
def test_a_failing_child_stops_the_attack_with_its_message(attack_one: Callable[[list[int]], list[int]],
                                                           error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        list(attack_batches(attack_one, BATCHES, processes=2))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, train_tiny_checkpoint: Callable[..., Path]) -> Path:
    return train_tiny_checkpoint(tmp_path_factory.mktemp("forked") / "tiny" / "checkpoint.safetensors")


def test_parallel_batches_give_the_outcomes_of_one_process(tiny: Path) -> None:
    model, _ = load_model(tiny)
    split = load_split("synthetic", train=False).first(16)
    config = make_attack_config(Attack.AUTOATTACK, threat=ThreatModel.parse("Linf", "8/255"),
                                version=AAVersion.CUSTOM, attacks=(AAAttack.APGD_CE, AAAttack.APGD_T), n_iter=5,
                                batch_size=4)
    one = robust_accuracy(model, split.images, split.labels, config)
    three = robust_accuracy(model, split.images, split.labels, config, processes=3)
    assert 0 < one.robust_acc < one.clean_acc  # batches break points, so which process broke what matters
    assert torch.equal(one.robust, three.robust) and one.per_attack == three.per_attack


@pytest.mark.slow
def test_a_killed_parallel_evaluation_resumes_with_the_numbers_of_one_process(
        tiny: Path, tmp_path: Path, interrupt_after: Callable[[int], ProgressReporter]) -> None:
    settings = EvalOptions(attack=Attack.AUTOATTACK, version=AAVersion.CUSTOM, attacks=(AAAttack.APGD_CE,),
                           n_iter=5, n_examples=16, batch_size=4, device="cpu",
                           threat=ThreatModel.parse("Linf", "8/255"))
    reference = evaluate(tiny, "synthetic", replace(settings, out=tmp_path / "one.json")).result.randmix
    parallel = replace(settings, processes=2, out=tmp_path / "parallel.json")
    with pytest.raises(KeyboardInterrupt):
        evaluate(tiny, "synthetic", parallel, progress=interrupt_after(2))
    assert (tmp_path / "parallel.eval-state").is_file() and not (tmp_path / "parallel.json").exists()
    resumed = evaluate(tiny, "synthetic", parallel)
    rb = resumed.result.randmix
    assert resumed.resumed and (rb.points, rb.per_attack_robust_acc) == (reference.points,
                                                                          reference.per_attack_robust_acc)


@pytest.mark.parametrize("processes", [0, -1, 257])
def test_bad_process_counts_are_refused(tiny: Path, tmp_path: Path, processes: int) -> None:
    with pytest.raises(RandmixError, match="processes must be in 1..256"):
        evaluate(tiny, "synthetic", EvalOptions(processes=processes, n_examples=4, device="cpu",
                                                out=tmp_path / "r.json"))
    assert not (tmp_path / "r.json").exists()
