"""Every setting of an evaluation in one typed object, :class:`EvalOptions`, with the library's defaults.

:func:`~randmix_bench.robustness.preparation.prepare` and :func:`~randmix_bench.robustness.evaluate` take it, and
``randmix eval`` reads its option defaults from it, so the defaults are written once: here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from randmix_bench.results import AttackConfig
from randmix_bench.robustness.attacks import make_attack_config, resolve_eps, split_list
from randmix_bench.robustness.sanity import SanityOptions
from randmix_bench.vocab import AAVersion, Attack, Norm

__all__ = ["EvalOptions"]


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate; the defaults are RobustBench's protocol (AutoAttack standard on the first 10,000 test
    points). ``eps=None`` is RobustBench's eps for the norm (8/255 for Linf, 0.5 for L2: :func:`resolve_eps`), so
    that asking for L2 without an eps never silently runs at the Linf radius; with a ``sweep``, ``eps=None`` is allowed
    only when the sweep holds that default (else the headline eps would be one nobody asked for). Values are checked
    by ``prepare``."""

    attack: str = Attack.AUTOATTACK
    norm: str = Norm.LINF
    eps: str | float | None = None  # e.g. "8/255"; None: RobustBench's eps for the norm
    n_examples: int = 10000  # the first n test points, as RobustBench takes them
    # Points per attack batch. 250 is AutoAttack's own default (so a stock script gives the same per-point outcomes)
    # and was the fastest per point on a CPU (benchmarks/RESULTS.md): ConvMixer-64/8 attacks ran 2.6x slower per
    # point in batches of 1000 (activations fall out of the caches); on a GPU, larger batches pay.
    batch_size: int = 250
    seed: int = 0  # AutoAttack seeds every batch with it
    version: str = AAVersion.STANDARD
    attacks: str | Sequence[str] = ()  # with version custom: "apgd-ce, square" or a list
    n_iter: int | None = None  # APGD/FAB/PGD iterations (custom versions); None: AutoAttack's 100
    n_queries: int | None = None  # Square queries (custom versions); None: AutoAttack's 5000
    sweep: str | Sequence[str] = ()  # eps values of a robustness curve
    sweep_attacks: str | Sequence[str] = ()  # the curve's own (cheaper) attacks, e.g. "apgd-ce"; (): the main ones
    sanity: SanityOptions | None = None  # gradient-masking checks; None: not run
    transfer_from: str | Path | None = None  # with attack "transfer": the checkpoint the examples are made on
    data_dir: str | Path | None = None  # where the dataset is (see randmix_bench.data)
    device: str | torch.device = "auto"
    name: str | None = None  # the entry's name; None: the run folder's name
    out: str | Path | None = None  # the result JSON; None: leaderboards/<dataset>/<norm>/<name>.json

    def resolved_eps(self) -> tuple[str, float]:
        """The eps as given (or the norm's default) and its value."""
        return resolve_eps(self.eps, self.norm)

    def sweep_config(self, config: AttackConfig, eps: float) -> AttackConfig:
        """The attack configuration of a sweep point at ``eps``: the main one, or AutoAttack custom with
        ``sweep_attacks`` and the main one's seed, batch and budgets."""
        if not split_list(self.sweep_attacks):
            return config.model_copy(update={"eps": eps})
        return make_attack_config(Attack.AUTOATTACK, norm=config.norm, eps=eps, version=AAVersion.CUSTOM,
                                  attacks=self.sweep_attacks, seed=config.seed, batch_size=config.batch_size,
                                  n_iter=config.n_iter, n_queries=config.n_queries)

    def attack_config(self, eps: float) -> AttackConfig:
        """The validated attack configuration at ``eps``."""
        return make_attack_config(self.attack, norm=self.norm, eps=eps, version=self.version, attacks=self.attacks,
                                  seed=self.seed, batch_size=self.batch_size, n_iter=self.n_iter,
                                  n_queries=self.n_queries)
