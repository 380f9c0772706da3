"""Attack batches in forked processes (``robustness/forked.py``): the outcomes one process gives, every batch
attacked once, a child's error or death one line in the parent, and a killed parallel evaluation that resumes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from pyautoattack.fab_pt import FABAttack_PT
from torch import nn

from randmix_bench.checkpoint import load_model
from randmix_bench.data import load_split
from randmix_bench.errors import RandmixError
from randmix_bench.robustness import EvalOptions, ProgressReporter, evaluate, make_attack_config, robust_accuracy
from randmix_bench.robustness.attacks import Adversary
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


def test_a_daemonic_process_attacks_its_batches_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reproduce worker is daemonic, and multiprocessing refuses it children: it attacks in order, itself."""
    monkeypatch.setitem(multiprocessing.current_process()._config, "daemon", True)  # what multiprocessing checks
    assert [(b, broken) for b, broken, _ in attack_batches(_pid, BATCHES, processes=2)] == \
        [(b, [os.getpid(), *idx]) for b, idx in BATCHES]


def test_children_started_before_a_failed_start_are_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[multiprocessing.process.BaseProcess] = []
    start = multiprocessing.context.ForkProcess.start

    def second_fails(self: multiprocessing.context.ForkProcess) -> None:
        if started:
            raise OSError("Cannot allocate memory")
        start(self)
        started.append(self)

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", second_fails)
    with pytest.raises(OSError, match="allocate"):
        list(attack_batches(_pid, BATCHES, processes=2))
    assert len(started) == 1 and started[0].exitcode is not None  # stopped and reaped, not left attacking


PARENT = """
import os, sys, time
from randmix_bench.robustness.forked import attack_batches

def attack(idx):
    with open(os.path.join(sys.argv[1], str(os.getpid())), "w"):
        pass
    time.sleep(600)
    return idx

list(attack_batches(attack, [(b, [b]) for b in range(4)], processes=2))
"""


def _alive(pid: int) -> bool:
    """A process that exists and is no zombie (an orphan's zombie waits for init, who may be slow to reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked attacks run on Linux only")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_children_die_with_a_killed_parent(tmp_path: Path, sig: signal.Signals) -> None:
    """A parent killed or terminated runs no cleanup; its orphans used to attack on, unread, for their share."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], cwd=Path(__file__).parents[1])
    try:
        while len(list(tmp_path.iterdir())) < 2 and parent.poll() is None:
            time.sleep(0.05)
        children = [int(p.name) for p in tmp_path.iterdir()]
        assert len(children) == 2 and all(_alive(pid) for pid in children)
        parent.send_signal(sig)
        parent.wait()
        for _ in range(600):  # bounded wait, no speed asserted: the kernel kills them as the parent dies
            if not any(_alive(pid) for pid in children):
                break
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in children)
    finally:
        parent.kill()
        for pid in [int(p.name) for p in tmp_path.iterdir()]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


class ZeroGradientWhenBright(nn.Module):
    """A linear classifier whose input gradient is zero on bright images (a masked gradient on some batches)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = (x.flatten(1).mean(1) > 0.5).view(-1, 1, 1, 1)
        return self.linear(torch.where(bright, x.detach(), x).flatten(1))


def test_warnings_logged_inside_a_childs_attack_become_the_results_flags() -> None:
    """APGD-T checks for zero gradients inside its attack, on every batch; the harness checks the first batch only
    (dark here). Logged in a child, the warning used to be lost with it, and the result was not marked."""
    torch.manual_seed(0)
    model = ZeroGradientWhenBright()
    x = torch.cat([torch.rand(4, 3, 4, 4) * 0.4, 0.6 + torch.rand(4, 3, 4, 4) * 0.4])
    y = model(x).argmax(1)  # every point correctly classified: every point attacked
    config = make_attack_config(Attack.AUTOATTACK, threat=ThreatModel.parse("Linf", "8/255"),
                                version=AAVersion.CUSTOM, attacks=(AAAttack.APGD_T,), n_iter=2, batch_size=4)
    one = robust_accuracy(model, x, y, config)
    two = robust_accuracy(model, x, y, config, processes=2)
    assert one.flags and any("zero gradient" in flag for flag in one.flags)
    assert two.flags == one.flags and torch.equal(one.robust, two.robust)


@pytest.mark.parametrize(("order", "fab_restarts"), [((AAAttack.FAB_T, AAAttack.FAB), 1),
                                                     ((AAAttack.FAB, AAAttack.FAB_T), 5)])
def test_fab_runs_with_autoattacks_restarts_whatever_ran_in_this_process(
        monkeypatch: pytest.MonkeyPatch, order: tuple[AAAttack, ...], fab_restarts: int) -> None:
    """AutoAttack's loop leaves FAB at fab-t's one restart for a later fab. fab-t's batches may run in a forked
    process, or in an earlier run that is resumed: FAB's restarts must follow the order, not this process's past."""
    ran: list[tuple[bool, int]] = []

    def spy(self: FABAttack_PT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ran.append((self.targeted, self.n_restarts))
        return x

    monkeypatch.setattr(FABAttack_PT, "perturb", spy)
    config = make_attack_config(Attack.AUTOATTACK, threat=ThreatModel.parse("Linf", "8/255"),
                                version=AAVersion.CUSTOM, attacks=order)
    x, y = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    fresh, after_fab_t = (Adversary(ZeroGradientWhenBright(), config, torch.device("cpu")) for _ in range(2))
    fresh.perturb(AAAttack.FAB, x, y)  # fab-t's batches ran elsewhere
    after_fab_t.perturb(AAAttack.FAB_T, x, y)
    after_fab_t.perturb(AAAttack.FAB, x, y)
    assert ran == [(False, fab_restarts), (True, 1), (False, fab_restarts)]


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
