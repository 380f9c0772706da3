"""The attacks and their configuration: which attacks a choice runs, the threat model they run in, PGD, and
AutoAttack's attacks behind :class:`Adversary`.

This is the one module that touches ``pyautoattack``'s internals (its attack objects, its checks, its
logger): when pyautoattack changes, only this file follows it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pyautoattack import AutoAttack, checks
from pyautoattack.autopgd_base import APGDAttack
from torch import nn

from randmix_bench.errors import RandmixError, check_seed, choices_error
from randmix_bench.result_fields import MAX_N_ITER, MAX_N_QUERIES
from randmix_bench.results import AttackConfig
from randmix_bench.threat import ThreatModel
from randmix_bench.vocab import AAAttack, AAVersion, Attack, Norm, split_list

__all__ = [
    "VERSIONS",
    "AUTOATTACK_ATTACKS",
    "CUSTOM_ATTACKS",
    "BLACK_BOX",
    "AUTOATTACK_LOGGER",
    "Adversary",
    "split_list",
    "parse_attacks",
    "make_attack_config",
    "pgd_attack",
]

VERSIONS = (AAVersion.STANDARD, AAVersion.PLUS, AAVersion.CUSTOM)  # run here; "rand" is for randomized defenses
CUSTOM_ATTACKS = tuple(AAAttack)
AUTOATTACK_ATTACKS = tuple(a for a in AAAttack if a is not AAAttack.PGD)
BLACK_BOX = (AAAttack.SQUARE,)
AUTOATTACK_LOGGER = "auto-attack"  # the logger pyautoattack's checks warn through


# ------------------------------------------------------------------------------------ configuration


def parse_attacks(items: str | Sequence[str], option: str = "--attacks") -> tuple[AAAttack, ...]:
    """``"apgd-ce, square"`` (an option's comma list) -> its attacks, in order; unknown names are one error."""
    names = split_list(items)
    unknown = [name for name in names if name not in AAAttack.values()]
    if unknown:
        raise RandmixError(f"{option} takes attacks from: {', '.join(CUSTOM_ATTACKS)} (unknown: {', '.join(unknown)})")
    return tuple(AAAttack(name) for name in names)


def make_attack_config(
    attack: Attack = Attack.AUTOATTACK,
    *,
    threat: ThreatModel,
    version: AAVersion = AAVersion.STANDARD,
    attacks: Sequence[AAAttack] = (),
    seed: int = 0,
    batch_size: int = 1000,
    n_iter: int | None = None,
    n_queries: int | None = None,
) -> AttackConfig:
    """Validate an attack choice and resolve the attacks it runs, in order.

    ``autoattack`` runs AutoAttack's ``standard`` (or ``plus``) set, or ``attacks`` with ``custom``;
    ``apgd-ce`` and ``square`` are AutoAttack ``custom`` with that one attack (AutoAttack's settings for
    it); ``pgd`` is :func:`pgd_attack`; ``none`` reports clean accuracy. Budget overrides (``n_iter``,
    ``n_queries``) change what an attack is, so they are refused for the named AutoAttack versions.
    """
    if version not in VERSIONS:
        raise choices_error(AAVersion.what, str(version), VERSIONS)
    if batch_size < 1:
        raise RandmixError(f"batch size must be >= 1, got {batch_size}")
    check_seed("seed", seed)
    for label, value, most in (("n_iter", n_iter, MAX_N_ITER), ("n_queries", n_queries, MAX_N_QUERIES)):
        if value is not None and not 1 <= value <= most:
            raise RandmixError(f"{label} must be in 1..{most}, got {value}")
    custom = version is AAVersion.CUSTOM
    if attacks and not (attack is Attack.AUTOATTACK and custom):
        raise RandmixError("--attacks goes with --attack autoattack --version custom")
    if attack is Attack.AUTOATTACK:
        if custom:
            if not attacks:
                raise RandmixError(f"--version custom needs --attacks from: {', '.join(CUSTOM_ATTACKS)}")
            if len(set(attacks)) != len(attacks):
                raise RandmixError(f"--attacks repeats an attack: {', '.join(attacks)}")
        else:
            if n_iter is not None or n_queries is not None:
                raise RandmixError(f"n_iter/n_queries change AutoAttack {version}'s budget; use --version custom")
            aa = AutoAttack(nn.Identity(), norm=threat.norm.value, eps=threat.eps.value, version=version.value)
            attacks = [AAAttack(a) for a in aa.attacks_to_run]
    else:
        named = {Attack.NONE: (), Attack.TRANSFER: (AAAttack.APGD_CE,)}
        version, attacks = AAVersion.CUSTOM, named[attack] if attack in named else (AAAttack(attack.value),)
    return AttackConfig(attack=attack, version=version, attacks=list(attacks), norm=threat.norm, eps=threat.eps.value,
                        seed=seed, batch_size=batch_size, n_iter=n_iter, n_queries=n_queries)


# ---------------------------------------------------------------------------------------------- PGD


def _l2(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *[1] * (t.dim() - 1))


def _project(delta: torch.Tensor, norm: Norm, eps: float) -> torch.Tensor:
    if norm is Norm.LINF:
        return delta.clamp(-eps, eps)
    return delta * (eps / _l2(delta).clamp_min(1e-12)).clamp(max=1.0)


def pgd_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: Norm, eps: float, steps: int, seed: int
) -> torch.Tensor:
    """PGD on the cross-entropy (Madry et al.): a random start in the ball, ``steps`` steps of
    ``2.5 * eps / steps`` (sign of the gradient for Linf, its direction for L2), projected onto the
    eps-ball and [0, 1]. Returns per point the first iterate that fools the model, else the last one.
    Seeded per call like AutoAttack's attacks, so a batch's result does not depend on earlier batches."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    step = 2.5 * eps / steps
    noise = torch.rand(x.shape, generator=generator, device=x.device) * 2 - 1
    if norm is Norm.L2:
        noise = noise / _l2(noise).clamp_min(1e-12) * torch.rand(len(x), 1, 1, 1, generator=generator, device=x.device)
    x_adv = (x + eps * noise).clamp(0, 1).detach()
    best, fooled = x_adv.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)

    def keep_first_fooled(logits: torch.Tensor) -> None:  # no host sync: masks, not indices
        nonlocal best, fooled
        newly = (logits.argmax(1) != y) & ~fooled
        best, fooled = torch.where(newly.view(-1, 1, 1, 1), x_adv, best), fooled | newly

    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            logits = model(x_adv)
            grad = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x_adv)[0]
        with torch.no_grad():
            keep_first_fooled(logits)
            direction = grad.sign() if norm is Norm.LINF else grad / _l2(grad).clamp_min(1e-12)
            x_adv = (x + _project(x_adv + step * direction - x, norm, eps)).clamp(0, 1)
    with torch.no_grad():
        keep_first_fooled(model(x_adv))
    return torch.where(fooled.view(-1, 1, 1, 1), best, x_adv)


# --------------------------------------------------------------------------------------- AutoAttack


def _set_apgd_iterations(apgd: APGDAttack, n_iter: int) -> None:
    """Change an APGD attack's iterations and the step-size schedule ``APGDAttack.__init__`` derives from them."""
    apgd.n_iter = apgd.n_iter_orig = n_iter
    apgd.n_iter_2 = max(int(0.22 * n_iter), 1)
    apgd.n_iter_min = max(int(0.06 * n_iter), 1)
    apgd.size_decr = max(int(0.03 * n_iter), 1)


class Adversary:
    """AutoAttack for one model under one :class:`AttackConfig`, configured as its ``version`` configures
    it with any budget override applied, behind the few operations the harness and the checks need.

    The attack loop itself is the harness's (it resumes batch by batch); this class only sets up each batch
    of each attack exactly as ``AutoAttack.run_standard_evaluation`` sets it up, and runs AutoAttack's
    checks, which warn through :data:`AUTOATTACK_LOGGER`."""

    def __init__(self, model: nn.Module, config: AttackConfig, device: torch.device) -> None:
        custom = [a.value for a in config.attacks if a in AUTOATTACK_ATTACKS] or None
        self.model, self.config = model, config
        self._aa = AutoAttack(model, attacks=custom if config.version is AAVersion.CUSTOM else None, device=device,
                              eps=config.eps, norm=config.norm.value, seed=config.seed, version=config.version.value)
        self._aa.verbose = False
        if config.n_iter is not None:
            _set_apgd_iterations(self._aa.apgd, config.n_iter)
            _set_apgd_iterations(self._aa.apgd_targeted, config.n_iter)
            self._aa.fab.n_iter = config.n_iter
        if config.n_queries is not None:
            self._aa.square.n_queries = config.n_queries
        # AutoAttack's loop gives FAB one restart for fab-t and leaves it so, for a fab after it too. Set from the
        # order, not from what ran here: fab-t's batches may have run in forked processes or in an earlier run.
        order = config.attacks
        fab_after_t = AAAttack.FAB in order and AAAttack.FAB_T in order[: order.index(AAAttack.FAB)]
        self._fab_restarts = 1 if fab_after_t else self._aa.fab.n_restarts

    def perturb(self, attack: AAAttack, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One batch of one attack: adversarial candidates for ``x`` (not yet checked against the threat model)."""
        aa, config = self._aa, self.config
        if attack is AAAttack.PGD:
            return pgd_attack(self.model, x, y, norm=config.norm, eps=config.eps, steps=config.n_iter or 100,
                              seed=config.seed)
        seed = aa.get_seed()
        if attack in (AAAttack.APGD_CE, AAAttack.APGD_DLR):
            aa.apgd.loss, aa.apgd.seed = attack.value.removeprefix("apgd-"), seed
            return aa.apgd.perturb(x, y)
        if attack is AAAttack.APGD_T:
            aa.apgd_targeted.seed = seed
            return aa.apgd_targeted.perturb(x, y)
        if attack in (AAAttack.FAB, AAAttack.FAB_T):
            aa.fab.targeted, aa.fab.seed = attack is AAAttack.FAB_T, seed
            aa.fab.n_restarts = 1 if attack is AAAttack.FAB_T else self._fab_restarts
            return aa.fab.perturb(x, y)
        aa.square.seed = seed  # AAAttack.SQUARE, the one left
        return aa.square.perturb(x, y)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._aa.get_logits(x)

    def dlr_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """APGD's per-point DLR loss (scale-invariant in the logits)."""
        return self._aa.apgd.dlr_loss(logits, y)

    def standard_checks(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> int:
        """AutoAttack's pre-attack checks (randomized, output range, dynamic, number of classes) on one
        batch, as ``run_standard_evaluation`` runs them; returns the number of classes the model predicts."""
        aa = self._aa
        checks.check_randomized(aa.get_logits, x, y, bs=batch_size, logger=aa.logger)
        n_classes = checks.check_range_output(aa.get_logits, x, logger=aa.logger)
        checks.check_dynamic(self.model, x, False, logger=aa.logger)
        checks.check_n_classes(n_classes, self.config.attacks, aa.apgd_targeted.n_target_classes,
                               aa.fab.n_target_classes, logger=aa.logger)
        return n_classes

    def check_zero_gradients(self, gradient: torch.Tensor) -> None:
        checks.check_zero_gradients(gradient, logger=self._aa.logger)

    def check_square_sr(self, accuracies: dict[str, float]) -> None:
        """AutoAttack's warning when Square broke points the attacks before it did not (``clean`` first)."""
        checks.check_square_sr(accuracies, logger=self._aa.logger)
