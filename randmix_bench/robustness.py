"""Adversarial robustness under RobustBench's protocol, with AutoAttack (``pyautoattack``) as the attack.

Protocol: the first ``n`` test points in their canonical order, the model in eval mode and float32,
inputs in [0, 1], AutoAttack ``standard`` by default. The attack loop is AutoAttack's own: each attack
runs only on the points every earlier attack failed on, in batches of the still-robust points in index
order, each batch seeded with the same seed; so at equal batch size the numbers are AutoAttack's
``run_standard_evaluation`` numbers. What this module adds around that loop:

- resume: the batches of an attack are fixed when it starts and each finished batch is recorded in a
  small JSON file beside the result; a killed evaluation, rerun with the same command, replays the
  finished batches and attacks only the rest, ending with the numbers an uninterrupted run gives. The
  file names the checkpoint's sha256 and the settings and carries a checksum of its own content, so a
  hand-edited, damaged or foreign file is refused rather than replayed into a result;
- one writer: the result is locked (``files.exclusive``) for the whole evaluation;
- speed: data stays on the device, model weights do not require gradients (attacks only need input
  gradients), batches are large; per-attack wall times are recorded to show where time goes;
- trust: every counted adversarial example is checked to lie in the eps-ball and in [0, 1];
  AutoAttack's own checks are run (also its zero-gradient check before every gradient-based attack,
  which AutoAttack itself runs only inside APGD with the DLR loss) and their warnings are kept in the
  result, where any of them marks it ``unreliable``; ``--sanity`` adds the gradient-masking checks of
  :func:`_sanity_checks`;
- sweeps over eps (a robustness curve) and the RobustBench ``model_info`` JSON with a ``randmix`` block.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import torch
import torch.nn.functional as F
from pyautoattack import AutoAttack, checks
from pyautoattack.autopgd_base import APGDAttack
from torch import nn

from randmix_bench.checkpoint import CHECKPOINT_NAME, load_model, resolve
from randmix_bench.data import ImageSplit, load_split
from randmix_bench.device import resolve_device
from randmix_bench.errors import ExistsError, RandmixError
from randmix_bench.files import atomic_path, exclusive, sha256
from randmix_bench.mixing import count_parameters
from randmix_bench.provenance import collect
from randmix_bench.results import (
    AttackConfig,
    CheckpointRef,
    RandmixBlock,
    RobustnessResult,
    SanityReport,
    SweepPoint,
    check_entry_name,
    pct,
    write_result,
)
from randmix_bench.tasks import accuracy

__all__ = [
    "ATTACKS",
    "NORMS",
    "VERSIONS",
    "CUSTOM_ATTACKS",
    "Outcome",
    "EvalOutput",
    "SanityOptions",
    "ProgressReporter",
    "EvalRecord",
    "StateError",
    "record_checksum",
    "split_list",
    "parse_eps",
    "parse_eps_list",
    "make_attack_config",
    "pgd_attack",
    "robust_accuracy",
    "evaluate",
    "default_name",
    "default_output",
    "DEFAULT_EPS",
]

ATTACKS = ("none", "autoattack", "apgd-ce", "pgd", "square")
NORMS = ("Linf", "L2")  # RobustBench's threat models
VERSIONS = ("standard", "plus", "custom")  # AutoAttack's; "rand" is for randomized defenses, which ours are not
AUTOATTACK_ATTACKS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
CUSTOM_ATTACKS = (*AUTOATTACK_ATTACKS, "pgd")
BLACK_BOX = ("square",)
RECORD_FORMAT = "randmix-eval-state/2"
AUTOATTACK_LOGGER = "auto-attack"  # the logger pyautoattack's checks warn through
BALL_TOLERANCE = 1e-5  # float slack when checking that an adversarial example lies in the eps-ball
DEFAULT_EPS = {"Linf": "8/255", "L2": "0.5"}  # RobustBench's eps per threat model


def __getattr__(name: str) -> Any:
    """``RichProgress`` moved to the command line's :mod:`randmix_bench.cli_progress` (the library draws
    nothing); old imports of it from here still work, without this module importing Rich."""
    if name == "RichProgress":
        from randmix_bench.cli_progress import RichProgress

        return RichProgress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def split_list(items: str | Sequence[str]) -> list[str]:
    """``"apgd-ce, square"`` (or a list of such items) -> ``["apgd-ce", "square"]``: the one way a
    comma list is read, so spaces after commas and empty items never become names."""
    parts = items.split(",") if isinstance(items, str) else [p for item in items for p in item.split(",")]
    return [p.strip() for p in parts if p.strip()]


# ------------------------------------------------------------------------------------------ arguments


def parse_eps(text: str | float, norm: str) -> float:
    """``"8/255"``, ``"0.5"`` or a float -> eps; rejects eps <= 0, a Linf eps > 1 and unknown norms."""
    if norm not in NORMS:
        raise RandmixError(f"unsupported norm {norm!r}; valid choices: {', '.join(NORMS)} (RobustBench's threat models)")
    s = str(text).strip()
    try:
        num, _, den = s.partition("/")
        value = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise RandmixError(f"eps {s!r} is not a number or a fraction like 8/255") from None
    if not math.isfinite(value) or value <= 0:
        raise RandmixError(f"eps must be > 0, got {s}")
    if norm == "Linf" and value > 1:
        raise RandmixError(f"a Linf eps must be at most 1 (inputs are in [0, 1]), got {s}")
    return value


def parse_eps_list(text: str | Sequence[str], norm: str) -> list[tuple[str, float]]:
    """``"1/255,2/255"`` -> [(text, value)] sorted by value; duplicates are an error."""
    items = split_list(text)
    points = sorted(((t, parse_eps(t, norm)) for t in items), key=lambda p: p[1])
    values = [v for _, v in points]
    if len(set(values)) != len(values):
        raise RandmixError(f"the eps list {', '.join(items)} repeats a value")
    return points


def make_attack_config(
    attack: str = "autoattack",
    *,
    norm: str = "Linf",
    eps: float,
    version: str = "standard",
    attacks: str | Sequence[str] = (),
    seed: int = 0,
    batch_size: int = 1000,
    n_iter: int | None = None,
    n_queries: int | None = None,
) -> AttackConfig:
    """Validate an attack choice and resolve the attacks it runs, in order.

    ``autoattack`` runs AutoAttack's ``standard`` (or ``plus``) set, or ``--attacks`` with ``custom``;
    ``apgd-ce`` and ``square`` are AutoAttack ``custom`` with that one attack (AutoAttack's settings for
    it); ``pgd`` is :func:`pgd_attack`; ``none`` reports clean accuracy. Budget overrides (``n_iter``,
    ``n_queries``) change what an attack is, so they are refused for the named AutoAttack versions.
    """
    if attack not in ATTACKS:
        raise RandmixError(f"unknown attack {attack!r}; valid choices: {', '.join(ATTACKS)}")
    if norm not in NORMS:
        raise RandmixError(f"unsupported norm {norm!r}; valid choices: {', '.join(NORMS)} (RobustBench's threat models)")
    if version not in VERSIONS:
        raise RandmixError(f"unknown AutoAttack version {version!r}; valid choices: {', '.join(VERSIONS)}")
    if batch_size < 1:
        raise RandmixError(f"batch size must be >= 1, got {batch_size}")
    for label, value in (("n_iter", n_iter), ("n_queries", n_queries)):
        if value is not None and value < 1:
            raise RandmixError(f"{label} must be >= 1, got {value}")
    attacks = split_list(attacks)
    if attacks and not (attack == "autoattack" and version == "custom"):
        raise RandmixError("--attacks goes with --attack autoattack --version custom")
    if attack == "autoattack":
        if version == "custom":
            unknown = [a for a in attacks if a not in CUSTOM_ATTACKS]
            if not attacks or unknown:
                raise RandmixError(f"--version custom needs --attacks from: {', '.join(CUSTOM_ATTACKS)}"
                                 + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
            if len(set(attacks)) != len(attacks):
                raise RandmixError(f"--attacks repeats an attack: {', '.join(attacks)}")
        else:
            if n_iter is not None or n_queries is not None:
                raise RandmixError(f"n_iter/n_queries change AutoAttack {version}'s budget; use --version custom")
            attacks = list(AutoAttack(nn.Identity(), norm=norm, eps=eps, version=version).attacks_to_run)
    else:
        version, attacks = "custom", ([] if attack == "none" else [attack])
    return AttackConfig(attack=attack, version=version, attacks=attacks, norm=norm, eps=eps, seed=seed,
                        batch_size=batch_size, n_iter=n_iter, n_queries=n_queries)


# ------------------------------------------------------------------------------------------ attacks


def _l2(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *[1] * (t.dim() - 1))


def _project(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    if norm == "Linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _l2(delta).clamp_min(1e-12)).clamp(max=1.0)


def pgd_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str, eps: float, steps: int, seed: int) -> torch.Tensor:
    """PGD on the cross-entropy (Madry et al.): a random start in the ball, ``steps`` steps of
    ``2.5 * eps / steps`` (sign of the gradient for Linf, its direction for L2), projected onto the
    eps-ball and [0, 1]. Returns per point the first iterate that fools the model, else the last one.
    Seeded per call like AutoAttack's attacks, so a batch's result does not depend on earlier batches."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    step = 2.5 * eps / steps
    noise = torch.rand(x.shape, generator=generator, device=x.device) * 2 - 1
    if norm == "L2":
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
            direction = grad.sign() if norm == "Linf" else grad / _l2(grad).clamp_min(1e-12)
            x_adv = (x + _project(x_adv + step * direction - x, norm, eps)).clamp(0, 1)
    with torch.no_grad():
        keep_first_fooled(model(x_adv))
    return torch.where(fooled.view(-1, 1, 1, 1), best, x_adv)


def _set_apgd_iterations(apgd: APGDAttack, n_iter: int) -> None:
    """Change an APGD attack's iterations and the step-size schedule ``APGDAttack.__init__`` derives from them."""
    apgd.n_iter = apgd.n_iter_orig = n_iter
    apgd.n_iter_2 = max(int(0.22 * n_iter), 1)
    apgd.n_iter_min = max(int(0.06 * n_iter), 1)
    apgd.size_decr = max(int(0.03 * n_iter), 1)


def _adversary(model: nn.Module, config: AttackConfig, device: torch.device) -> AutoAttack:
    """AutoAttack configured as its ``version`` configures it, with any budget override applied."""
    custom = [a for a in config.attacks if a in AUTOATTACK_ATTACKS] or None
    adversary = AutoAttack(model, attacks=custom if config.version == "custom" else None, device=device,
                           eps=config.eps, norm=config.norm, seed=config.seed, version=config.version)
    adversary.verbose = False
    if config.n_iter is not None:
        _set_apgd_iterations(adversary.apgd, config.n_iter)
        _set_apgd_iterations(adversary.apgd_targeted, config.n_iter)
        adversary.fab.n_iter = config.n_iter
    if config.n_queries is not None:
        adversary.square.n_queries = config.n_queries
    return adversary


def _perturb(adversary: AutoAttack, attack: str, x: torch.Tensor, y: torch.Tensor, config: AttackConfig) -> torch.Tensor:
    """One batch of one attack, set up exactly as ``AutoAttack.run_standard_evaluation`` sets it up."""
    if attack == "pgd":
        return pgd_attack(adversary.model, x, y, norm=config.norm, eps=config.eps, steps=config.n_iter or 100, seed=config.seed)
    seed = adversary.get_seed()
    if attack in ("apgd-ce", "apgd-dlr"):
        adversary.apgd.loss, adversary.apgd.seed = attack.removeprefix("apgd-"), seed
        return adversary.apgd.perturb(x, y)
    if attack == "apgd-t":
        adversary.apgd_targeted.seed = seed
        return adversary.apgd_targeted.perturb(x, y)
    if attack in ("fab", "fab-t"):
        adversary.fab.targeted, adversary.fab.seed = attack == "fab-t", seed
        if attack == "fab-t":
            adversary.fab.n_restarts = 1
        return adversary.fab.perturb(x, y)
    if attack == "square":
        adversary.square.seed = seed
        return adversary.square.perturb(x, y)
    raise RandmixError(f"unknown attack {attack!r}")


def _in_threat_model(x_adv: torch.Tensor, x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """Per point: is ``x_adv`` a valid input (in [0, 1]) within ``eps`` of ``x``?"""
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)
    in_box = (x_adv.flatten(1).amin(1) >= 0) & (x_adv.flatten(1).amax(1) <= 1)
    return (size <= eps + BALL_TOLERANCE) & in_box


# ------------------------------------------------------------------------------------ progress, record


class ProgressReporter(Protocol):
    """Where the harness reports progress: one ``start`` per attack, one ``advance`` per batch."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, points: int, robust_acc: float) -> None: ...


class StateError(RandmixError):
    """A partial-evaluation file that must not be continued: damaged, edited, or from another run."""


def record_checksum(data: dict[str, Any]) -> str:
    """sha256 of a record's canonical JSON without its ``checksum`` field: what the file must carry."""
    body = {k: v for k, v in data.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _indices(value: Any, n: int) -> bool:
    return isinstance(value, list) and all(type(i) is int and 0 <= i < n for i in value)


def _record_problem(data: dict[str, Any], n: int, batch_size: int) -> str | None:
    """What is wrong with a record's content for ``n`` points in batches of ``batch_size``, if anything:
    every index must name one of the points and every finished batch one batch of its attack's plan."""
    if data.get("clean") is not None and not _indices(data["clean"], n):
        return f"its clean predictions name points outside the {n} evaluated"
    flags, stages = data.get("flags"), data.get("stages")
    if not (isinstance(flags, list) and all(isinstance(f, str) for f in flags) and isinstance(stages, dict)):
        return "its flags or stages are malformed"
    for stage, attacks in stages.items():
        for attack, entry in (attacks.items() if isinstance(attacks, dict) else [(None, None)]):
            where = f"stage {stage!r} attack {attack!r}"
            if not isinstance(entry, dict) or set(entry) != {"plan", "done", "seconds"}:
                return f"{where} is malformed"
            plan, done, seconds = entry["plan"], entry["done"], entry["seconds"]
            if not (plan is None and done == {} or _indices(plan, n)) or not isinstance(done, dict):
                return f"{where} plans points outside the {n} evaluated"
            batches = {str(b): plan[first : first + batch_size] for b, first in enumerate(range(0, len(plan or []), batch_size))}
            if any(key not in batches or not _indices(broken, n) or not set(broken) <= set(batches[key])
                   for key, broken in done.items()):
                return f"{where} records batches or points outside its plan of {len(plan or [])} points"
            if not isinstance(seconds, (int, float)) or seconds < 0:
                return f"{where} has a bad attack time"
    return None


class EvalRecord:
    """What a running evaluation has finished, batch by batch, so that a rerun continues it.

    A JSON file (written atomically after every batch, removed once the result is written) holding the
    settings it belongs to (the checkpoint's sha256 among them), the clean predictions, per stage and
    attack the batch plan, the points each finished batch broke and the attack's seconds so far,
    AutoAttack's flags so far, and a checksum of all that (:func:`record_checksum`). A file that fails
    any check is refused with a :class:`StateError`: replaying it would put numbers that no attack
    produced into a result. ``path=None`` keeps the record in memory (no resume)."""

    def __init__(self, path: Path | None, fingerprint: dict[str, Any]) -> None:
        self.path = path
        fingerprint = json.loads(json.dumps(fingerprint))  # the form it has after a round trip through the file
        self.data: dict[str, Any] = {"format": RECORD_FORMAT, "fingerprint": fingerprint, "clean": None, "stages": {},
                                     "flags": []}
        self.resumed = False
        if path is not None and path.is_file():
            self.data, self.resumed = self._read(path, fingerprint), True

    @staticmethod
    def _read(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any]:
        fix = "delete it to start over, or pass --force to discard it"
        try:
            saved = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StateError(f"{path}: unreadable partial evaluation, not JSON ({e}); {fix}") from None
        if not isinstance(saved, dict) or saved.get("format") != RECORD_FORMAT:
            raise StateError(f"{path} is not a {RECORD_FORMAT} partial evaluation; {fix}")
        if saved.get("checksum") != record_checksum(saved):
            raise StateError(f"{path} was edited or damaged (its checksum does not match its content); {fix}")
        theirs = saved.get("fingerprint")
        theirs = theirs if isinstance(theirs, dict) else {}
        if theirs.get("checkpoint_sha256") != fingerprint["checkpoint_sha256"]:
            raise StateError(f"{path} holds a partial evaluation of another checkpoint (sha256 "
                             f"{str(theirs.get('checkpoint_sha256'))[:12]}…); {fix}")
        differ = sorted(k for k in fingerprint if theirs.get(k) != fingerprint[k])
        if differ:
            raise StateError(f"{path} holds a partial evaluation with other settings ({', '.join(differ)} differ); "
                             f"rerun its command to finish it, or {fix}")
        problem = _record_problem(saved, fingerprint["n_examples"], fingerprint["attack"]["batch_size"])
        if problem:
            raise StateError(f"{path} does not fit this evaluation: {problem}; {fix}")
        return saved

    def attack(self, stage: str, attack: str) -> dict[str, Any]:
        return self.data["stages"].setdefault(stage, {}).setdefault(attack, {"plan": None, "done": {}, "seconds": 0.0})

    def save(self) -> None:
        if self.path is not None:
            self.data["checksum"] = record_checksum(self.data)
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(self.data, separators=(",", ":")))

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


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


# ------------------------------------------------------------------------------------------ harness


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
        return self.clean.float().mean().item()

    @property
    def robust_acc(self) -> float:
        return self.robust.float().mean().item()


@contextmanager
def _input_gradients_only(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode with weights that do not require gradients, restored afterwards: attacks
    need input gradients only, so backward skips every weight-gradient kernel and its memory."""
    was_training, requires = model.training, [p.requires_grad for p in model.parameters()]
    model.eval().requires_grad_(False)
    try:
        yield model
    finally:
        for p, r in zip(model.parameters(), requires, strict=True):
            p.requires_grad_(r)
        model.train(was_training)


class _Harness:
    """One model (in eval mode, see ``_input_gradients_only``) and one set of points on the device;
    runs attack stages against a record and keeps the wall time of each stage's attacks."""

    def __init__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, device: torch.device,
                 batch_size: int, record: EvalRecord, progress: ProgressReporter | None) -> None:
        self.model = model
        self.x = images.to(device).float().div_(255) if images.dtype == torch.uint8 else images.to(device).float()
        self.y = labels.to(device)
        self.device, self.batch_size, self.record, self.progress = device, batch_size, record, progress
        self.seconds: dict[str, float] = {}  # "<stage> <attack>" -> attack time, summed over resumed parts

    def clean(self) -> torch.Tensor:
        if self.record.data["clean"] is None:
            with torch.no_grad():
                correct = torch.cat([self.model(self.x[i : i + self.batch_size]).argmax(1) == self.y[i : i + self.batch_size]
                                     for i in range(0, len(self.y), self.batch_size)])
            self.record.data["clean"] = correct.nonzero().flatten().tolist()
            self.record.save()
        flags = torch.zeros(len(self.y), dtype=torch.bool)
        flags[self.record.data["clean"]] = True
        return flags

    def run(self, stage: str, config: AttackConfig, start: torch.Tensor) -> Outcome:
        """Attack the points flagged in ``start`` with ``config.attacks`` in order (AutoAttack's loop)."""
        clean, robust = self.clean(), start.clone()
        outcome = Outcome(clean=clean, robust=robust)
        if not config.attacks:
            return outcome
        adversary = _adversary(self.model, config, self.device)
        self._autoattack_checks(adversary, config)
        n = len(robust)
        with torch.no_grad():  # as in AutoAttack's loop; the attacks enable gradients where they need them
            for attack in config.attacks:
                entry = self.record.attack(stage, attack)
                if entry["plan"] is None:
                    entry["plan"] = robust.nonzero().flatten().tolist()
                plan = entry["plan"]
                if self.progress is not None:
                    self.progress.start(f"{stage} · {attack}", len(plan))
                for b, first in enumerate(range(0, len(plan), self.batch_size)):
                    idx = plan[first : first + self.batch_size]
                    if str(b) not in entry["done"]:
                        began = time.perf_counter()
                        entry["done"][str(b)] = self._attack_batch(adversary, attack, idx, config)
                        entry["seconds"] += time.perf_counter() - began  # recorded with the batch: a resume adds to it
                        self.record.save()
                    robust[entry["done"][str(b)]] = False
                    if self.progress is not None:
                        self.progress.advance(len(idx), robust.sum().item() / n)
                outcome.per_attack[attack] = robust.sum().item() / n
                outcome.seconds[attack] = self.seconds[f"{stage} {attack}"] = entry["seconds"]
        checks.check_square_sr({"clean": clean.float().mean().item(), **outcome.per_attack}, logger=adversary.logger)
        return outcome

    def _attack_batch(self, adversary: AutoAttack, attack: str, idx: list[int], config: AttackConfig) -> list[int]:
        """Indices (into the points) of ``idx`` that ``attack`` broke with a valid adversarial example."""
        index = torch.tensor(idx, device=self.device)
        x, y = self.x[index], self.y[index]
        x_adv = _perturb(adversary, attack, x, y, config)
        broken = (self.model(x_adv).argmax(1) != y) & _in_threat_model(x_adv, x, config.norm, config.eps)
        return index[broken].tolist()

    def _autoattack_checks(self, adversary: AutoAttack, config: AttackConfig) -> None:
        """AutoAttack's pre-attack checks on the first batch, as ``run_standard_evaluation`` runs them,
        plus its zero-gradient check whenever a gradient-based attack follows: AutoAttack runs that one
        only inside APGD with the DLR loss, so an APGD-CE or PGD evaluation would never be checked. Like AutoAttack,
        it looks only at the points an attack would start from (the correctly classified ones): at a misclassified
        point whose label ranks third, DLR is the constant -1 and its gradient is zero by construction."""
        x, y = self.x[: self.batch_size], self.y[: self.batch_size]
        checks.check_randomized(adversary.get_logits, x, y, bs=self.batch_size, logger=adversary.logger)
        n_classes = checks.check_range_output(adversary.get_logits, x, logger=adversary.logger)
        checks.check_dynamic(self.model, x, False, logger=adversary.logger)
        checks.check_n_classes(n_classes, config.attacks, adversary.apgd_targeted.n_target_classes,
                               adversary.fab.n_target_classes, logger=adversary.logger)
        if any(a not in BLACK_BOX for a in config.attacks):
            with torch.no_grad():
                attacked = adversary.get_logits(x).argmax(1) == y  # AutoAttack attacks (and checks) only these
            if attacked.any():
                gradient = self._loss_gradient(adversary, x[attacked], y[attacked], n_classes)
                checks.check_zero_gradients(gradient, logger=adversary.logger)

    def _loss_gradient(self, adversary: AutoAttack, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
        """Input gradient of APGD's DLR loss (scale-invariant, so a confident honest model does not
        underflow to zero; cross-entropy below 3 classes, where DLR is undefined) at these points."""
        x = x.clone().requires_grad_(True)
        with torch.enable_grad():
            logits = adversary.get_logits(x)
            loss = adversary.apgd.dlr_loss(logits, y) if n_classes >= 3 else F.cross_entropy(logits, y, reduction="none")
            return torch.autograd.grad(loss.sum(), x)[0]


def robust_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: AttackConfig,
    *,
    device: str | torch.device = "cpu",
    progress: ProgressReporter | None = None,
) -> Outcome:
    """Clean and robust accuracy of ``model`` on these points under ``config``, in memory (no resume).

    ``images`` are uint8 [N, C, H, W] or floats in [0, 1]. At equal batch size and seed this equals
    ``AutoAttack(...).run_standard_evaluation`` (and so RobustBench's ``benchmark``)."""
    dev = resolve_device(device)
    with _input_gradients_only(model.to(dev)), autoattack_flags() as flags:
        harness = _Harness(model, images, labels, device=dev, batch_size=config.batch_size,
                           record=EvalRecord(None, {}), progress=progress)
        outcome = harness.run(f"eps={config.eps:g}", config, harness.clean())
    outcome.flags = flags
    return outcome


# ------------------------------------------------------------------------------------------- sanity


@dataclass(frozen=True)
class SanityOptions:
    """Gradient-masking checks (Carlini et al. 2019, "On Evaluating Adversarial Robustness").

    What is checked is documented on ``_sanity_checks``. ``large_eps`` defaults to the radius from which
    every input reaches the constant mid-gray image (0.5 for Linf, ``0.5 * sqrt(C*H*W)`` for L2): an
    honest model keeps ~no accuracy there. Square is compared with AutoAttack's own tolerance
    (``check_square_sr``'s 0.2 percentage points)."""

    large_eps: float | None = None
    max_large_eps_acc: float = 0.01
    square_queries: int | None = None  # default: the evaluation's --n-queries, else AutoAttack's 5000
    square_tolerance: float = 0.002


def _large_eps(options: SanityOptions, norm: str, point_shape: Sequence[int]) -> float:
    if options.large_eps is not None:
        return options.large_eps
    return 0.5 if norm == "Linf" else 0.5 * math.sqrt(math.prod(point_shape))


def _sanity_checks(harness: _Harness, main: Outcome, config: AttackConfig, options: SanityOptions,
                  flags: list[str], eps_text: str) -> SanityReport:
    """The checks every published robust number comes with:

    1. AutoAttack's own flags (any flag fails the check);
    2. robust accuracy at a very large eps (APGD-CE, starting from the points still robust at eps) is
       at most ``max_large_eps_acc``: gradients that lead nowhere would leave it high;
    3. the black-box Square attack, run alone on every clean-correct point, is not stronger than the
       white-box attacks: if it breaks points they could not, their gradients are masked.
    """
    notes: list[str] = []
    large = _large_eps(options, config.norm, harness.x.shape[1:])
    large_cfg = config.model_copy(update={"attack": "apgd-ce", "version": "custom", "attacks": ["apgd-ce"], "eps": large})
    large_acc = harness.run(f"sanity large eps={large:g}", large_cfg, main.robust).robust_acc
    large_ok = large_acc <= options.max_large_eps_acc
    notes.append(f"APGD-CE at {config.norm} eps={large:g} leaves {pct(large_acc)}% robust "
                 f"(limit {pct(options.max_large_eps_acc)}%): {'ok' if large_ok else 'FAILED, gradients may be masked'}")

    whitebox = [a for a in config.attacks if a not in BLACK_BOX]
    if whitebox and config.attacks[: len(whitebox)] == whitebox:  # white-box attacks first: read them off the main run
        whitebox_acc = main.per_attack[whitebox[-1]]
    else:
        wb_cfg = config.model_copy(update={"attack": "apgd-ce", "version": "custom", "attacks": ["apgd-ce"]})
        whitebox, whitebox_acc = ["apgd-ce"], harness.run(f"sanity white-box eps={eps_text}", wb_cfg, main.clean).robust_acc
    queries = options.square_queries or config.n_queries
    square_cfg = config.model_copy(update={"attack": "square", "version": "custom", "attacks": ["square"], "n_queries": queries})
    square_acc = harness.run(f"sanity square eps={eps_text}", square_cfg, main.clean).robust_acc
    square_ok = square_acc >= whitebox_acc - options.square_tolerance
    notes.append(f"Square ({queries or 'AutoAttack default'} queries) alone leaves {pct(square_acc)}%, white-box "
                 f"({', '.join(whitebox)}) {pct(whitebox_acc)}%: {'ok' if square_ok else 'FAILED, black-box is stronger'}")
    if flags:
        notes.append(f"AutoAttack raised {len(flags)} flag(s): FAILED")
    return SanityReport(passed=large_ok and square_ok and not flags, large_eps=large, large_eps_robust_acc=large_acc,
                        square_robust_acc=square_acc, whitebox_robust_acc=whitebox_acc, autoattack_flags=list(flags),
                        notes=notes)


# ------------------------------------------------------------------------------------------ evaluate


@dataclass
class EvalOutput:
    result: RobustnessResult
    path: Path  # the JSON written
    curve: Path | None  # the robustness-curve PNG, with --sweep
    resumed: bool  # continued a partial evaluation


def default_name(checkpoint: str | Path) -> str:
    """A run folder's name (also for ``<run>/checkpoint.safetensors``), else the checkpoint file's stem."""
    path = resolve(checkpoint)
    return path.parent.name if path.name == CHECKPOINT_NAME else path.stem


def default_output(dataset: str, norm: str, name: str, root: str | Path = "leaderboards") -> Path:
    """``leaderboards/<dataset>/<threat model>/<name>.json``, RobustBench's ``model_info`` layout."""
    return Path(root) / check_entry_name(Path(dataset).name, "the dataset's folder name") / norm / f"{name}.json"


def _check_label(meta: dict[str, Any], dataset: str) -> None:
    """A model trained on the bundled Fashion-MNIST subset is evaluated on it alone: its results must never
    be labelled, and ranked, as those of a model trained on full Fashion-MNIST."""
    trained_on = meta["extra"].get("train", {}).get("dataset")
    if trained_on == "fashion-mnist-mini" and Path(dataset).name != trained_on:
        raise RandmixError(f"the model was trained on fashion-mnist-mini (the bundled subset); evaluate it with "
                           f"--dataset fashion-mnist-mini, so that its results are not labelled {Path(dataset).name}")


def _check_fits(model: nn.Module, meta: dict[str, Any], split: ImageSplit, device: torch.device) -> None:
    """The model takes the dataset's images and predicts its number of classes, or a one-line error.

    The checkpoint's ``in_chans``/``num_classes`` are compared first: a forward pass alone would let a
    3-channel model run on 1-channel images, its in-model Normalize broadcasting them to 3 channels."""
    info, kwargs = split.info, meta["model_kwargs"]
    chans, classes = kwargs.get("in_chans"), kwargs.get("num_classes")
    if chans is not None and chans != info.in_chans:
        raise RandmixError(f"the model ({meta['model']}) takes {chans}-channel images but {info.name} has "
                           f"{info.in_chans}-channel images; evaluate it on the data it was trained for")
    if classes is not None and classes != info.num_classes:
        raise RandmixError(f"the model ({meta['model']}) predicts {classes} classes but {info.name} has "
                           f"{info.num_classes}; evaluate it on the data it was trained for")
    x = split.images[:1].to(device).float().div_(255)
    try:
        with torch.no_grad():
            out = model(x)
    except RuntimeError as e:
        raise RandmixError(f"the model does not take {split.info.name} images of shape {tuple(x.shape[1:])}: "
                         f"{str(e).splitlines()[0]}") from None
    if out.shape[-1] != split.info.num_classes:
        raise RandmixError(f"the model predicts {out.shape[-1]} classes but {split.info.name} has {split.info.num_classes}")


def _curve_png(path: Path, sweep: list[SweepPoint], clean_acc: float, title: str, norm: str) -> None:
    """Robust accuracy against eps (clean accuracy at eps 0), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs, ys = [0.0] + [p.eps_value for p in sweep], [100 * clean_acc] + [100 * p.robust_acc for p in sweep]
    ax.plot(xs, ys, marker="o")
    ax.set_xticks(xs, ["0"] + [p.eps for p in sweep], rotation=45 if len(xs) > 6 else 0)
    ax.set(xlabel=f"{norm} eps", ylabel="robust accuracy (%)", ylim=(0, 100), title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _attack_label(config: AttackConfig) -> str:
    """``AutoAttack standard``, ``AutoAttack custom (apgd-ce, square)``, ``pgd``..."""
    if config.attack != "autoattack":
        return config.attack
    return f"AutoAttack {config.version}" + (f" ({', '.join(config.attacks)})" if config.version == "custom" else "")


def _footnote(config: AttackConfig) -> str | None:
    """What ``autoattack_acc`` holds when it is not AutoAttack standard (RobustBench's meaning of the field)."""
    if config.attack == "autoattack" and config.version == "standard":
        return None
    if config.attack == "none":
        return "No attack: autoattack_acc is the clean accuracy."
    return f"Robust accuracy under {_attack_label(config)}, not AutoAttack standard: an upper bound on robust accuracy."


def evaluate(
    checkpoint: str | Path,
    dataset: str,
    *,
    attack: str = "autoattack",
    norm: str = "Linf",
    eps: str = "8/255",
    n_examples: int = 10000,
    batch_size: int = 1000,
    seed: int = 0,
    version: str = "standard",
    attacks: str | Sequence[str] = (),
    n_iter: int | None = None,
    n_queries: int | None = None,
    sweep: str | Sequence[str] = (),
    sanity: SanityOptions | None = None,
    data_dir: str | Path | None = None,
    device: str | torch.device = "auto",
    name: str | None = None,
    out: str | Path | None = None,
    force: bool = False,
    progress: ProgressReporter | None = None,
    command: str | None = None,
) -> EvalOutput:
    """``randmix eval``: evaluate a checkpoint and write its RobustBench ``model_info`` JSON.

    Every input is validated before any work, and nothing is written for bad input. The result is locked
    for the whole evaluation, so a second process writing it fails at once. An existing result (or curve)
    is never overwritten without ``force``. Progress is recorded beside the result (``<name>.eval-state``)
    so that rerunning the same call after a kill continues where it stopped; the result then says
    ``resumed`` and its attack times add up every part. Any AutoAttack flag marks the result
    ``unreliable``, as RobustBench marks flagged entries."""
    began = time.perf_counter()
    eps_text, eps_value = str(eps).strip(), parse_eps(eps, norm)
    sweep_points = parse_eps_list(sweep, norm)
    config = make_attack_config(attack, norm=norm, eps=eps_value, version=version, attacks=attacks, seed=seed,
                                batch_size=batch_size, n_iter=n_iter, n_queries=n_queries)
    dev = resolve_device(device)
    if n_examples < 1:
        raise RandmixError(f"n_examples must be >= 1, got {n_examples}")
    if name is not None:
        check_entry_name(name)
    ckpt_path = resolve(checkpoint)
    model, meta = load_model(ckpt_path)
    _check_label(meta, dataset)
    test = load_split(dataset, train=False, data_dir=data_dir)
    points = test.first(n_examples)
    model = model.to(dev).eval()
    _check_fits(model, meta, points, dev)

    name = name or check_entry_name(default_name(ckpt_path), "the run folder's name (or pass --name)")
    out_path = Path(out) if out is not None else default_output(dataset, norm, name)
    curve_path = out_path.with_suffix(".png") if sweep_points else None

    with exclusive(out_path, f"the result {out_path}"):  # before any attack work: one writer per result
        for path in (out_path, curve_path):
            if path is not None and path.exists() and not force:
                raise ExistsError(f"{path} already exists; pass --force to overwrite it (or --name/--out for a new entry)")
        checkpoint_ref = CheckpointRef.for_result(ckpt_path, out_path, sha256(ckpt_path))
        digest = checkpoint_ref.sha256
        fingerprint = {"checkpoint_sha256": digest, "dataset": dataset, "n_examples": n_examples,
                       "attack": config.model_dump(mode="json"), "sweep": [v for _, v in sweep_points],
                       "sanity": None if sanity is None else asdict(sanity)}
        state_path = out_path.with_suffix(".eval-state")
        if force and state_path.is_file():
            try:
                EvalRecord(state_path, fingerprint)
            except StateError:
                state_path.unlink()  # --force discards a partial evaluation it must not continue
        record = EvalRecord(state_path, fingerprint)
        trainable, frozen = count_parameters(model)

        with _input_gradients_only(model), autoattack_flags(record.data["flags"]) as flags:
            harness = _Harness(model, points.images, points.labels, device=dev, batch_size=batch_size, record=record, progress=progress)
            main = harness.run(f"eps={eps_text}", config, harness.clean())
            sweep_results, chain = [], main.clean
            for text, value in sweep_points:
                outcome = main if math.isclose(value, eps_value) else \
                    harness.run(f"eps={text}", config.model_copy(update={"eps": value}), chain)
                chain = chain & outcome.robust  # broken at a smaller eps stays broken at every larger one
                sweep_results.append(SweepPoint(eps=text, eps_value=value, robust_acc=outcome.robust_acc))
            report = _sanity_checks(harness, main, config, sanity, flags, eps_text) if sanity is not None else None

        mixing = getattr(model, "mixing", None)
        block = RandmixBlock(
            model=meta["model"],
            mixing=mixing.mixing.value if mixing is not None else "full",
            mixer_seed=mixing.seed if mixing is not None else 0,
            smooth_sigma=mixing.smooth_sigma if mixing is not None else 0.0,
            train_seed=meta["extra"].get("train", {}).get("seed"),  # the trainer's TrainConfig, saved in the checkpoint
            train_recipe=meta["extra"].get("train", {}).get("recipe"),
            train_epochs=meta["extra"].get("epochs_done"),
            dataset=Path(dataset).name,
            threat_model=norm,
            eps_value=eps_value,
            n_examples=n_examples,
            attack=config,
            clean_acc=main.clean_acc,
            robust_acc=main.robust_acc,
            per_attack_robust_acc=main.per_attack,
            clean_acc_full_test=None if len(test) == n_examples else accuracy(model, test, batch_size, dev),
            params_trainable=trainable,
            params_frozen=frozen,
            checkpoint=checkpoint_ref,
            provenance=collect(dev, time.perf_counter() - began, command),
            sanity=report,
            sweep=sweep_results,
            curve_png=curve_path.name if curve_path is not None else None,
            attack_time_s={k: round(v, 3) for k, v in harness.seconds.items()},
            autoattack_flags=list(flags),
            resumed=record.resumed,
        )
        result = RobustnessResult(
            name=name,
            dataset=Path(dataset).name,
            architecture=meta["model"],
            eps=eps_text,
            clean_acc=pct(main.clean_acc),
            autoattack_acc=pct(main.robust_acc),
            footnote=_footnote(config),
            unreliable=bool(flags) or (report is not None and not report.passed),  # as RobustBench marks flagged entries
            randmix=block,
        )
        if curve_path is not None:
            _curve_png(curve_path, sweep_results, main.clean_acc, f"{name}: {_attack_label(config)}", norm)
        write_result(out_path, result, force=force)
        record.discard()
        return EvalOutput(result=result, path=out_path, curve=curve_path, resumed=record.resumed)
