"""The gradient-masking control: a white-box number is only as good as the weaker attacks it must beat.

A model that masks its gradients looks robust to white-box attacks (APGD follows a useless gradient) but not to
attacks that never use its gradient: examples made on another model (a transfer attack, ``--attack transfer``)
or a black-box search (Square). So for each white-box entry, the controls on the same checkpoint, threat model
and eps are compared with it point by point on the points both attacked: a point the white-box attacks left
robust but a control broke is a point where the white-box attacks fell short. An entry is flagged when a control
leaves fewer of the common points robust than its white-box attacks do (the issue's rule: white-box robust accuracy
above the transfer or black-box one); single missed points are reported, not flagged: Square, a different search,
finds the odd point APGD misses on honest models too (that is why AutoAttack standard runs it).

The same comparison checks a tier's cheaper attack set (the medium tier's APGD-CE + APGD-T) against AutoAttack
standard run on the same checkpoint (on fewer points): the cheaper number is only an upper bound, and it agrees when
standard breaks at most one point of accuracy more on the common points (the tiers' equivalence margin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from randmix_bench.results import RandmixBlock, RobustnessResult
from randmix_bench.vocab import Attack

__all__ = ["ControlCheck", "is_control", "controls"]


def is_control(rb: RandmixBlock) -> bool:
    """A transfer attack or Square alone: evidence about other entries, never a white-box number itself."""
    return rb.attack.attack == Attack.TRANSFER or rb.attack.attacks == [Attack.SQUARE.value]


@dataclass(frozen=True)
class ControlCheck:
    """One control against one white-box entry, on the ``n`` points both attacked."""

    entry: str  # the white-box entry's name
    control: str  # the control entry's name
    kind: str  # "transfer" or "square"
    n: int
    whitebox_robust: int  # points robust under the white-box attacks
    control_robust: int  # points robust under the control
    missed: int  # robust under white-box, broken by the control
    tolerance: int = 0  # points the control may leave fewer robust before the entry is flagged

    @property
    def flagged(self) -> bool:
        return self.whitebox_robust - self.control_robust > self.tolerance


def _kind(whitebox: RandmixBlock, control: RandmixBlock) -> str | None:
    """What ``control`` is for ``whitebox``: a transfer or Square control, AutoAttack standard against a cheaper
    set, or nothing."""
    if is_control(control):
        return "transfer" if control.attack.attack == Attack.TRANSFER else "square"
    return "AA standard" if control.attack.is_aa_standard and not whitebox.attack.is_aa_standard else None


def _run_key(rb: RandmixBlock) -> tuple[str, str, float]:
    ref = rb.checkpoint
    return ref.weights_sha256 or ref.sha256, rb.threat_model.value, rb.eps_value


def controls(results: Sequence[RobustnessResult]) -> list[ControlCheck]:
    """Every (white-box entry, control) pair on one checkpoint, threat model and eps, both with per-point
    outcomes, compared on their common points."""
    whitebox: dict[tuple[str, str, float], list[RobustnessResult]] = {}
    for r in results:
        rb = r.randmix
        if rb.points is not None and not is_control(rb) and rb.attack.attack != Attack.NONE:
            whitebox.setdefault(_run_key(rb), []).append(r)
    checks = []
    for c in results:
        crb = c.randmix
        if crb.points is None:
            continue
        control_robust = dict(zip(crb.points.indices, crb.points.robust, strict=True))
        for w in whitebox.get(_run_key(crb), []):
            kind = _kind(w.randmix, crb)
            if kind is None:
                continue
            assert w.randmix.points is not None
            pairs = [(r, control_robust[i]) for i, r in zip(w.randmix.points.indices, w.randmix.points.robust,
                                                            strict=True) if i in control_robust]
            if not pairs:
                continue
            checks.append(ControlCheck(
                entry=w.name, control=c.name, kind=kind, n=len(pairs),
                whitebox_robust=sum(wr for wr, _ in pairs), control_robust=sum(cr for _, cr in pairs),
                missed=sum(wr and not cr for wr, cr in pairs),
                tolerance=len(pairs) // 100 if kind == "AA standard" else 0))
    return checks
