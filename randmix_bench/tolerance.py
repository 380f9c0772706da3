"""How far a number re-measured by ``randmix verify`` may sit from the one an entry records before it counts as a
mismatch: the sampling error of re-measuring a subset of the recorded points, plus what a different device may
change. :data:`TOLERANCE_RULE` is the rule in words, as ``randmix verify`` prints it.
"""

from __future__ import annotations

import math

__all__ = ["DEFAULT_SIGMAS", "DEVICE_FLIPS", "DEVICE_PSNR_DB", "TOLERANCE_RULE", "tolerance"]

DEFAULT_SIGMAS = 3.0
DEVICE_FLIPS = 2
"""Predictions allowed to flip between the machine that recorded an accuracy and this one, on top of
the sampling tolerance: GPUs run float32 convolutions in TF32 and sum in other orders, which can move a
borderline logit across the decision boundary."""
DEVICE_PSNR_DB = 0.05
"""The same allowance for a mean PSNR: TF32 on the recording GPU moves outputs by ~1e-3 relative."""

TOLERANCE_RULE = (
    "Tolerance: {sigmas:g} × sd × √((N−m)/(m(N−1))) + a device allowance, where the entry's number was measured "
    "on the first N test points and m ≤ N are re-measured here; the first m points are a sample of those N, so "
    "their mean varies by that hypergeometric standard error (0 when m = N). sd is √(p(1−p)) for an accuracy p, "
    "the per-image standard deviation for PSNR. Allowance: {flips} flipped predictions ({flips}/m) for accuracy, "
    "{psnr_db} dB for PSNR, for differences between the recording GPU and this device. "
    "Robust accuracy is checked one-sided with the same rule (sd from the recorded robust accuracy): the entry's "
    "strongest white-box attack (APGD-CE when it ran it) is re-run at its norm, eps, seed and iterations "
    "(AutoAttack's 100 unless recorded) on the m points, and the entry fails when its recorded robust accuracy "
    "is above what that attack leaves by more than the tolerance; when that attack was the entry's first, the "
    "accuracy it recorded after it is checked two-sided (below by more fails too); entries attacked with none or "
    "only black-box attacks skip this check. Of the m points, those recorded as broken (per-point outcomes) that "
    "this attack leaves are attacked with the entry's other attacks: more than {flips} that survive them all fail "
    "the entry (its robust accuracy was lowered). The sweep's other eps values are re-attacked the same way, "
    "upwards, and checked one-sided. Per-point outcomes (clean on the m points, and the whole test set's, all of it "
    "unless --no-full-test) may differ from the checkpoint's predictions at no more than {flips} points."
)


def tolerance(sd: float, n_checked: int, n_recorded: int, allowance: float, sigmas: float = DEFAULT_SIGMAS) -> float:
    """How far a mean over the first ``n_checked`` points may sit from the recorded mean over the first
    ``n_recorded`` (a superset) before it counts as a mismatch; see :data:`TOLERANCE_RULE`."""
    fpc = (n_recorded - n_checked) / (n_recorded - 1) if n_recorded > 1 else 0.0
    return sigmas * sd * math.sqrt(fpc / n_checked) + allowance
