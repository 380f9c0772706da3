"""Every setting of an evaluation in one typed object, :class:`EvalOptions`, with the library's defaults, and
:func:`parse_threat`, the command line's reading of ``--norm``, ``--eps`` and ``--sweep``.

:func:`~randmix_bench.robustness.preparation.prepare` and :func:`~randmix_bench.robustness.evaluate` take it, and
``randmix eval`` reads its option defaults from it, so the defaults are written once: here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from randmix_bench.errors import RandmixError
from randmix_bench.results import AttackConfig
from randmix_bench.robustness.attacks import make_attack_config
from randmix_bench.robustness.sanity import SanityOptions
from randmix_bench.threat import DEFAULT_EPS, Eps, ThreatModel, parse_eps_list, same_eps
from randmix_bench.vocab import AAAttack, AAVersion, Attack, Norm

__all__ = ["EvalOptions", "parse_threat"]


def parse_threat(norm: str, eps: str | None, sweep: str | Sequence[str] = ()) -> tuple[ThreatModel, tuple[Eps, ...]]:
    """``--norm``, ``--eps`` and ``--sweep`` as typed values: the headline threat model and the sweep's eps, by
    value. Without ``--eps`` the headline is RobustBench's eps for the norm (8/255 for Linf, 0.5 for L2), which a
    sweep must then hold: else the entry's headline eps would be one nobody asked for."""
    threat = ThreatModel.parse(norm, eps)
    points = parse_eps_list(sweep, threat.norm)
    if eps is None and points and not any(same_eps(p.value, threat.eps.value) for p in points):
        raise RandmixError(f"--sweep {','.join(p.text for p in points)} does not hold {threat.norm}'s default eps "
                           f"{threat.eps}, so the entry's headline eps is ambiguous: pass --eps (e.g. --eps "
                           f"{points[-1]}), or add {threat.eps} to the sweep")
    return threat, points


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate, as typed values (the command line parses its text with :func:`parse_threat`,
    :func:`~randmix_bench.robustness.attacks.parse_attacks` and the vocabulary's ``.parse``); the defaults are
    RobustBench's protocol (AutoAttack standard, Linf 8/255, on the first 10,000 test points). Values are checked
    by ``prepare``."""

    attack: Attack = Attack.AUTOATTACK
    threat: ThreatModel = ThreatModel(Norm.LINF, DEFAULT_EPS[Norm.LINF])  # the headline norm and eps
    n_examples: int = 10000  # the first n test points, as RobustBench takes them
    # Points per attack batch. 250 is AutoAttack's own default (so a stock script gives the same per-point outcomes)
    # and was the fastest per point on a CPU (benchmarks/RESULTS.md): ConvMixer-64/8 attacks ran 2.6x slower per
    # point in batches of 1000 (activations fall out of the caches); on a GPU, larger batches pay.
    batch_size: int = 250
    seed: int = 0  # AutoAttack seeds every batch with it
    version: AAVersion = AAVersion.STANDARD
    attacks: tuple[AAAttack, ...] = ()  # with version custom
    n_iter: int | None = None  # APGD/FAB/PGD iterations (custom versions); None: AutoAttack's 100
    n_queries: int | None = None  # Square queries (custom versions); None: AutoAttack's 5000
    sweep: tuple[Eps, ...] = ()  # eps values of a robustness curve, by value (as parse_eps_list gives them)
    sweep_attacks: tuple[AAAttack, ...] = ()  # the curve's own (cheaper) attacks, e.g. APGD-CE; (): the main ones
    sanity: SanityOptions | None = None  # gradient-masking checks; None: not run
    transfer_from: str | Path | None = None  # with attack "transfer": the checkpoint the examples are made on
    data_dir: str | Path | None = None  # where the dataset is (see randmix_bench.data)
    device: str | torch.device = "auto"
    name: str | None = None  # the entry's name; None: the run folder's name
    out: str | Path | None = None  # the result JSON; None: leaderboards/<dataset>/<norm>/<name>.json

    def sweep_config(self, config: AttackConfig, eps: Eps) -> AttackConfig:
        """The attack configuration of a sweep point at ``eps``: the main one, or AutoAttack custom with
        ``sweep_attacks`` and the main one's seed, batch and budgets."""
        if not self.sweep_attacks:
            return config.model_copy(update={"eps": eps.value})
        return make_attack_config(Attack.AUTOATTACK, threat=self.threat.at(eps), version=AAVersion.CUSTOM,
                                  attacks=self.sweep_attacks, seed=config.seed, batch_size=config.batch_size,
                                  n_iter=config.n_iter, n_queries=config.n_queries)

    def attack_config(self) -> AttackConfig:
        """The validated attack configuration at the headline threat model."""
        return make_attack_config(self.attack, threat=self.threat, version=self.version, attacks=self.attacks,
                                  seed=self.seed, batch_size=self.batch_size, n_iter=self.n_iter,
                                  n_queries=self.n_queries)
