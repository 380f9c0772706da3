"""The harness: AutoAttack's attack loop, run batch by batch against a resume state.

Each attack runs only on the points every earlier attack failed on, in batches of the still-robust points
in index order, each batch seeded with the same seed; so at equal batch size the numbers are AutoAttack's
``run_standard_evaluation`` numbers. The batches of an attack are fixed when it starts and every finished
batch goes into the :class:`~randmix_bench.robustness.state.EvalRecord`, so a rerun replays them and attacks
only the rest. Progress goes to a :class:`ProgressReporter` and to ``logging``; nothing is printed.
"""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import torch
from torch import nn

from randmix_bench.device import resolve_device
from randmix_bench.results import AttackConfig
from randmix_bench.robustness.attack_mode import ChannelsLastInputs, attack_mode
from randmix_bench.robustness.attacks import Adversary
from randmix_bench.robustness.checks import after_attacks, autoattack_flags, before_attacks, in_threat_model
from randmix_bench.robustness.forked import attack_batches, can_fork
from randmix_bench.robustness.state import EvalRecord, StateError
from randmix_bench.tensors import to_unit
from randmix_bench.vocab import AAAttack

__all__ = ["ProgressReporter", "Outcome", "Harness", "robust_accuracy"]

log = logging.getLogger(__name__)


class ProgressReporter(Protocol):
    """Where the harness reports progress: one ``start`` per attack, one ``advance`` per batch."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, points: int, robust_acc: float) -> None: ...


@dataclass
class Outcome:
    """Flags over the ``n`` evaluated points after one attack configuration."""

    clean: torch.Tensor  # bool [n], on CPU
    robust: torch.Tensor  # bool [n], on CPU: still correctly classified after every attack
    per_attack: dict[str, float] = field(default_factory=dict)  # robust accuracy after each attack, in order
    seconds: dict[str, float] = field(default_factory=dict)  # attack time per attack, summed over resumed parts
    flags: list[str] = field(default_factory=list)  # AutoAttack's warnings (set by :func:`robust_accuracy`)

    @property
    def clean_acc(self) -> float:
        """Exactly count / n (never a float32 mean): compared with per-attack accuracies and per-point outcomes."""
        return int(self.clean.sum()) / len(self.clean)

    @property
    def robust_acc(self) -> float:
        return int(self.robust.sum()) / len(self.robust)


class Harness:
    """One model (in :func:`~.attack_mode.attack_mode`) and one set of points on the device;
    runs attack stages against a record and keeps the wall time of each stage's attacks. With a ``source``
    model the attacks run on it and their examples are judged on ``model``: a transfer attack. On a CPU, up to
    ``processes`` batches of an attack run at once, in forked one-thread processes (same outcomes)."""

    def __init__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, device: torch.device,
                 batch_size: int, record: EvalRecord, progress: ProgressReporter | None,
                 source: nn.Module | None = None, processes: int = 1) -> None:
        self.model = ChannelsLastInputs(model)
        self.source = self.model if source is None else ChannelsLastInputs(source)
        self.x = to_unit(images.to(device)) if images.dtype == torch.uint8 else images.to(device).float()
        self.y = labels.to(device)
        self.device, self.batch_size, self.record, self.progress = device, batch_size, record, progress
        self.processes = processes if can_fork(device) else 1  # batches attacked at once (see forked.py)
        self.seconds: dict[str, float] = {}  # "<stage> <attack>" -> attack time, summed over resumed parts
        self._clean: torch.Tensor | None = None

    def clean(self) -> torch.Tensor:
        """Which points the model classifies correctly: computed once per process (cheap) and recorded; a resumed
        record whose clean predictions differ is refused, as no honest run of this model could have left it."""
        if self._clean is None:
            with torch.no_grad():
                b = self.batch_size
                correct = torch.cat([self.model(self.x[i : i + b]).argmax(1) == self.y[i : i + b]
                                     for i in range(0, len(self.y), b)])
            indices = correct.nonzero().flatten().tolist()
            if self.record.clean is None:
                self.record.clean = indices
                self.record.save()
            elif self.record.clean != indices:
                raise StateError(f"{self.record.path}: its clean predictions are not this model's on these points "
                                 "(edited, or recorded on another device); delete it to start over, or pass --force "
                                 "to discard it")
            self._clean = torch.zeros(len(self.y), dtype=torch.bool)
            self._clean[indices] = True
        return self._clean.clone()

    def run(self, stage: str, config: AttackConfig, start: torch.Tensor) -> Outcome:
        """Attack the points flagged in ``start`` with ``config.attacks`` in order (AutoAttack's loop)."""
        clean, robust = self.clean(), start.clone()
        outcome = Outcome(clean=clean, robust=robust)
        if not config.attacks:
            return outcome
        adversary = Adversary(self.source, config, self.device)
        before_attacks(adversary, self.x[: self.batch_size], self.y[: self.batch_size], self.batch_size)
        n = len(robust)
        with torch.no_grad():  # as in AutoAttack's loop; the attacks enable gradients where they need them
            for attack in config.attacks:
                state = self.record.attack(stage, attack)
                if state.plan is None:
                    state.plan = robust.nonzero().flatten().tolist()
                plan = state.plan
                log.info("%s %s: %d points, %d batch(es) already done", stage, attack, len(plan), len(state.done))
                if self.progress is not None:
                    self.progress.start(f"{stage} · {attack}", len(plan))
                batches = [plan[first : first + self.batch_size] for first in range(0, len(plan), self.batch_size)]
                todo = []
                for b, idx in enumerate(batches):
                    if str(b) in state.done:  # replayed from the record
                        robust[state.done[str(b)]] = False
                        self._advance(len(idx), robust, n)
                    else:
                        todo.append((b, idx))
                attack_one = partial(self._attack_batch, adversary, attack, config=config)
                with closing(attack_batches(attack_one, todo, self.processes)) as finished:
                    for b, broken, seconds in finished:
                        state.done[str(b)] = broken
                        state.seconds += seconds  # recorded with the batch: a resume adds to it
                        self.record.save()
                        robust[broken] = False
                        self._advance(len(batches[b]), robust, n)
                outcome.per_attack[attack] = int(robust.sum()) / n
                outcome.seconds[attack] = self.seconds[f"{stage} {attack}"] = state.seconds
                log.info("%s %s: robust accuracy %.4f", stage, attack, outcome.per_attack[attack])
        after_attacks(adversary, outcome.clean_acc, outcome.per_attack)
        return outcome

    def _advance(self, points: int, robust: torch.Tensor, n: int) -> None:
        if self.progress is not None:
            self.progress.advance(points, robust.sum().item() / n)

    def _attack_batch(self, adversary: Adversary, attack: AAAttack, idx: list[int], config: AttackConfig) -> list[int]:
        """Indices (into the points) of ``idx`` that ``attack`` broke with a valid adversarial example."""
        index = torch.tensor(idx, device=self.device)
        x, y = self.x[index], self.y[index]
        x_adv = adversary.perturb(attack, x, y)
        broken = (self.model(x_adv).argmax(1) != y) & in_threat_model(x_adv, x, config.norm, config.eps)
        return index[broken].tolist()


def robust_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: AttackConfig,
    *,
    device: str | torch.device = "cpu",
    progress: ProgressReporter | None = None,
    processes: int = 1,
    source: nn.Module | None = None,
) -> Outcome:
    """Clean and robust accuracy of ``model`` on these points under ``config``, in memory (no resume).

    ``images`` are uint8 [N, C, H, W] or floats in [0, 1]. At equal batch size and seed this equals
    ``AutoAttack(...).run_standard_evaluation`` (and so RobustBench's ``benchmark``); on a CPU, ``processes``
    batches are attacked at once (:mod:`~randmix_bench.robustness.forked`), with the same outcomes. With a
    ``source`` model the attacks run on it and their examples are judged on ``model`` (a transfer attack)."""
    dev = resolve_device(device)
    with attack_mode(model.to(dev), None if source is None else source.to(dev)), autoattack_flags() as flags:
        harness = Harness(model, images, labels, device=dev, batch_size=config.batch_size,
                          record=EvalRecord({}), progress=progress, processes=processes, source=source)
        outcome = harness.run(f"eps={config.eps:g}", config, harness.clean())
    outcome.flags = flags
    return outcome
