"""The gradient-masking checks that attack an evaluation's points again, on top of the harness.

- a first attack that breaks no point (:func:`masking_flag`), flagged like AutoAttack's own warnings;
- with ``--sanity``, the checks of :func:`sanity_checks` (:class:`SanityOptions`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from randmix_bench.results import AttackConfig, SanityReport, pct
from randmix_bench.robustness.attacks import BLACK_BOX
from randmix_bench.robustness.harness import Harness, Outcome
from randmix_bench.threat import Eps
from randmix_bench.vocab import AAAttack, AAVersion, Attack, Norm

__all__ = ["SanityOptions", "masking_flag", "sanity_checks"]


def masking_flag(main: Outcome, config: AttackConfig) -> str | None:
    """A warning when the evaluation's first attack broke none of the points it attacked: robust accuracy equal to
    clean accuracy is what input rounding or another gradient mask produces (an honest model at a useful eps
    loses some points to APGD), so the result is flagged, and so marked unreliable, with or without --sanity."""
    if not config.attacks or not bool(main.clean.any()):
        return None
    first = config.attacks[0]
    if main.per_attack.get(first) != main.clean_acc:
        return None
    return (f"{first}, the first attack, broke none of the {int(main.clean.sum())} correctly classified points "
            "(robust accuracy = clean accuracy): gradients may be masked")



@dataclass(frozen=True)
class SanityOptions:
    """Gradient-masking checks (Carlini et al. 2019, "On Evaluating Adversarial Robustness").

    What is checked is documented on :func:`sanity_checks`. ``large_eps`` defaults to the radius from which
    every input reaches the constant mid-gray image (0.5 for Linf, ``0.5 * sqrt(C*H*W)`` for L2): an
    honest model keeps ~no accuracy there. Square is compared with AutoAttack's own tolerance
    (``check_square_sr``'s 0.2 percentage points)."""

    large_eps: float | None = None
    max_large_eps_acc: float = 0.01
    square_queries: int | None = None  # default: the evaluation's --n-queries, else AutoAttack's 5000
    square_tolerance: float = 0.002


def _large_eps(options: SanityOptions, norm: Norm, point_shape: Sequence[int]) -> float:
    if options.large_eps is not None:
        return options.large_eps
    return 0.5 if norm is Norm.LINF else 0.5 * math.sqrt(math.prod(point_shape))


def sanity_checks(harness: Harness, main: Outcome, config: AttackConfig, options: SanityOptions,
                  flags: list[str], eps: Eps) -> SanityReport:
    """The checks every published robust number comes with:

    1. AutoAttack's own flags (any flag fails the check);
    2. robust accuracy at a very large eps (APGD-CE, starting from the points still robust at eps) is
       at most ``max_large_eps_acc``: gradients that lead nowhere would leave it high;
    3. the black-box Square attack, run alone on every clean-correct point, is not stronger than the
       white-box attacks: if it breaks points they could not, their gradients are masked.
    """
    notes: list[str] = []
    large = _large_eps(options, config.norm, harness.x.shape[1:])
    apgd_ce = {"attack": Attack.APGD_CE, "version": AAVersion.CUSTOM, "attacks": [AAAttack.APGD_CE]}
    large_cfg = config.model_copy(update={**apgd_ce, "eps": large})
    large_acc = harness.run(f"sanity large eps={large:g}", large_cfg, main.robust).robust_acc
    large_ok = large_acc <= options.max_large_eps_acc
    notes.append(f"APGD-CE at {config.norm} eps={large:g} leaves {pct(large_acc)}% robust "
                 f"(limit {pct(options.max_large_eps_acc)}%): "
                 f"{'ok' if large_ok else 'FAILED, gradients may be masked'}")

    whitebox = [a for a in config.attacks if a not in BLACK_BOX]
    if whitebox and config.attacks[: len(whitebox)] == whitebox:  # white-box attacks first: read them off the main run
        whitebox_acc = main.per_attack[whitebox[-1]]
    else:
        whitebox = [AAAttack.APGD_CE]
        wb_cfg = config.model_copy(update=apgd_ce)
        whitebox_acc = harness.run(f"sanity white-box eps={eps}", wb_cfg, main.clean).robust_acc
    queries = options.square_queries or config.n_queries
    square_cfg = config.model_copy(update={"attack": Attack.SQUARE, "version": AAVersion.CUSTOM,
                                           "attacks": [AAAttack.SQUARE], "n_queries": queries})
    square_acc = harness.run(f"sanity square eps={eps}", square_cfg, main.clean).robust_acc
    square_ok = square_acc >= whitebox_acc - options.square_tolerance
    notes.append(f"Square ({queries or 'AutoAttack default'} queries) alone leaves {pct(square_acc)}%, white-box "
                 f"({', '.join(whitebox)}) {pct(whitebox_acc)}%: "
                 f"{'ok' if square_ok else 'FAILED, black-box is stronger'}")
    if flags:
        notes.append(f"AutoAttack raised {len(flags)} flag(s): FAILED")
    return SanityReport(passed=large_ok and square_ok and not flags, large_eps=large, large_eps_robust_acc=large_acc,
                        square_robust_acc=square_acc, whitebox_robust_acc=whitebox_acc, autoattack_flags=list(flags),
                        notes=notes)
