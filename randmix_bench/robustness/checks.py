"""The checks that say whether a robust accuracy can be trusted.

- every counted adversarial example lies in the eps-ball and in [0, 1] (:func:`in_threat_model`);
- AutoAttack's own checks run before and after the attacks (:func:`before_attacks`, :func:`after_attacks`),
  its zero-gradient check among them before every gradient-based attack, which AutoAttack itself runs
  only inside APGD with the DLR loss; their warnings are collected (:func:`autoattack_flags`) and kept in
  the result, where any of them marks it ``unreliable``;

The checks that run an evaluation's results through more attacks (``--sanity``, a first attack that breaks
nothing) are in :mod:`.sanity`, above the harness.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from randmix_bench.robustness.attacks import AUTOATTACK_LOGGER, BLACK_BOX, Adversary
from randmix_bench.vocab import Norm

__all__ = ["BALL_TOLERANCE", "autoattack_flags", "in_threat_model", "before_attacks", "after_attacks"]

BALL_TOLERANCE = 1e-5  # float slack when checking that an adversarial example lies in the eps-ball


def in_threat_model(x_adv: torch.Tensor, x: torch.Tensor, norm: Norm, eps: float) -> torch.Tensor:
    """Per point: is ``x_adv`` a valid input (in [0, 1]) within ``eps`` of ``x``?"""
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm is Norm.LINF else delta.norm(dim=1)
    in_box = (x_adv.flatten(1).amin(1) >= 0) & (x_adv.flatten(1).amax(1) <= 1)
    return (size <= eps + BALL_TOLERANCE) & in_box


# ------------------------------------------------------------------------------- AutoAttack's checks


@contextmanager
def autoattack_flags(flags: list[str] | None = None) -> Iterator[list[str]]:
    """Collect the warnings AutoAttack's checks log (randomized, dynamic, softmax output, zero gradients,
    Square stronger...), each once, instead of letting them scroll past; appended to ``flags`` (a
    record's list, so that they survive a kill) when given."""
    collected: list[str] = [] if flags is None else flags

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() not in collected:
                collected.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger(AUTOATTACK_LOGGER)
    logger.addHandler(handler)
    try:
        yield collected
    finally:
        logger.removeHandler(handler)


def before_attacks(adversary: Adversary, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    """AutoAttack's pre-attack checks on the first batch (``x``, ``y``), as ``run_standard_evaluation`` runs
    them, plus its zero-gradient check whenever a gradient-based attack follows: AutoAttack runs that one
    only inside APGD with the DLR loss, so an APGD-CE or PGD evaluation would never be checked. Like AutoAttack,
    it looks only at the points an attack would start from (the correctly classified ones): at a misclassified
    point whose label ranks third, DLR is the constant -1 and its gradient is zero by construction."""
    n_classes = adversary.standard_checks(x, y, batch_size)
    if any(a not in BLACK_BOX for a in adversary.config.attacks):
        with torch.no_grad():
            attacked = adversary.logits(x).argmax(1) == y  # AutoAttack attacks (and checks) only these
        if attacked.any():
            adversary.check_zero_gradients(_loss_gradient(adversary, x[attacked], y[attacked], n_classes))


def _loss_gradient(adversary: Adversary, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Input gradient of APGD's DLR loss (scale-invariant, so a confident honest model does not
    underflow to zero; cross-entropy below 3 classes, where DLR is undefined) at these points."""
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        logits = adversary.logits(x)
        loss = adversary.dlr_loss(logits, y) if n_classes >= 3 else F.cross_entropy(logits, y, reduction="none")
        return torch.autograd.grad(loss.sum(), x)[0]


def after_attacks(adversary: Adversary, clean_acc: float, per_attack: dict[str, float]) -> None:
    """AutoAttack's check after its attacks: Square breaking points the white-box attacks before it did not."""
    adversary.check_square_sr({"clean": clean_acc, **per_attack})
