"""Adversarial robustness under RobustBench's protocol, with AutoAttack (``pyautoattack``) as the attack.

Protocol: the first ``n`` test points in their canonical order, the model in eval mode and float32,
inputs in [0, 1], AutoAttack ``standard`` by default, eps RobustBench's for the threat model unless given
(8/255 for Linf, 0.5 for L2). The attack loop is AutoAttack's own, so at equal batch size the numbers are
AutoAttack's ``run_standard_evaluation`` numbers. What this package adds around that loop, module by module:

- :mod:`.attacks`: the attack choices and their configuration, PGD, and AutoAttack's attacks behind one
  adapter: the only module that touches pyautoattack's internals;
- :mod:`.harness`: the loop, batch by batch, fast (data on the device, large batches, per-attack wall times);
  progress through :class:`ProgressReporter` and ``logging``, never printed;
- :mod:`.attack_mode`: the model as attacks run it (eval, weights without gradients, channels-last, and on a
  CPU the GELU and eval BatchNorm kernels that are fast in that layout);
- :mod:`.forked`: on a CPU, several batches of an attack at once in forked one-thread processes (same outcomes);
- :mod:`.state`: resume: each finished batch is recorded in a small signed file beside the result, so a
  killed evaluation, rerun with the same command, ends with the numbers an uninterrupted run gives; a
  hand-edited, damaged or foreign file is refused rather than replayed into a result;
- :mod:`.checks`: trust: every counted adversarial example lies in the eps-ball and in [0, 1];
  AutoAttack's own checks (its zero-gradient check before every gradient-based attack) and their warnings,
  any of which marks the result ``unreliable``;
- :mod:`.sanity`: the gradient-masking checks that attack again (``--sanity``, a first attack that breaks nothing);
- :mod:`.options`: :class:`EvalOptions`, every setting of an evaluation with its default (``randmix eval``'s too);
- :mod:`.preparation`: an evaluation's inputs validated and loaded (:func:`~.preparation.prepare`), nothing written;
- :mod:`.evaluation`: ``randmix eval`` (:func:`evaluate`: prepare, run, record), one writer per result,
  sweeps over eps (a robustness curve) and the RobustBench ``model_info`` JSON with a ``randmix`` block.

The names below are re-exported here, so ``from randmix_bench.robustness import evaluate`` is the way in.
"""

from __future__ import annotations

from randmix_bench.robustness.attacks import (
    AUTOATTACK_ATTACKS,
    BLACK_BOX,
    CUSTOM_ATTACKS,
    VERSIONS,
    Adversary,
    _set_apgd_iterations,  # noqa: F401  (private, imported by the interop tests)
    make_attack_config,
    parse_attacks,
    pgd_attack,
    split_list,
)
from randmix_bench.robustness.checks import BALL_TOLERANCE, autoattack_flags
from randmix_bench.robustness.evaluation import EvalOutput, add_points, evaluate
from randmix_bench.robustness.harness import Outcome, ProgressReporter, robust_accuracy
from randmix_bench.robustness.options import EvalOptions, parse_threat
from randmix_bench.robustness.preparation import default_name, default_output
from randmix_bench.robustness.sanity import SanityOptions
from randmix_bench.robustness.state import RECORD_FORMAT, EvalRecord, StateError, record_checksum, state_key

__all__ = [
    "VERSIONS",
    "CUSTOM_ATTACKS",
    "AUTOATTACK_ATTACKS",
    "BLACK_BOX",
    "BALL_TOLERANCE",
    "RECORD_FORMAT",
    "Adversary",
    "Outcome",
    "EvalOptions",
    "EvalOutput",
    "add_points",
    "SanityOptions",
    "ProgressReporter",
    "EvalRecord",
    "StateError",
    "autoattack_flags",
    "record_checksum",
    "state_key",
    "split_list",
    "parse_attacks",
    "parse_threat",
    "make_attack_config",
    "pgd_attack",
    "robust_accuracy",
    "evaluate",
    "default_name",
    "default_output",
]

