"""Re-check leaderboard entries on a laptop: the checkpoint's hash, and its headline numbers recomputed.

A leaderboard number is only as good as the file behind it. ``randmix verify`` hashes each entry's
checkpoint, rebuilds the model from it, and recomputes on the first few hundred test points on the CPU
what the entry records: clean accuracy for a robustness entry, reconstruction PSNR for a pixel-shuffle
entry. A robustness entry's robust accuracy is re-checked: its strongest white-box attack (APGD-CE, at the
entry's norm, eps, seed and iterations) is re-run on those points; the recorded headline may not sit above
what that one attack leaves (the entry ran it and more, so it can only be lower), and when the attack was the
entry's first, the number recorded after it (``per_attack_robust_acc``) must match it both ways, so a number
edited down is caught too (the file's own checks tie the headline to it). A number lowered after the first attack
is caught through the per-point outcomes: the points recorded as broken that the first attack leaves are attacked
with the entry's other attacks, and must not survive them all. Each other eps of the sweep is re-attacked as the
headline is, one-sided. The full AutoAttack run is not repeated (it wants a GPU).

Everything else a reader or a verdict uses is re-derived from the checkpoint as well: its labels (model,
mixing, mixer seed, smoothing sigma, training seed, recipe and epochs: :func:`~randmix_bench.checkpoint.run_labels`),
its parameter counts, the attacks its AutoAttack version runs, a shuffle entry's training-loss trace (when the
checkpoint recorded one), the per-point clean outcomes where recorded, and ``clean_acc_full_test`` on every point of
the test set (or a random sample: ``full_test=False``); a recorded n larger than the test set is refused, and two
entries whose checkpoints hold the same weights under other labels fail.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from randmix_bench.checkpoint import CheckpointError, load_model, weights_digest
from randmix_bench.data import ImageSplit, load_split
from randmix_bench.entries import Entry
from randmix_bench.errors import RandmixError
from randmix_bench.files import MAX_JSON_BYTES, parse_json, read_regular, sha256
from randmix_bench.results import RandmixBlock
from randmix_bench.robustness import BLACK_BOX, robust_accuracy
from randmix_bench.run_identity import attack_problem, label_problem, relabelled_weights, source_problem, trace_problem
from randmix_bench.tasks import ShuffleTask, predict
from randmix_bench.tasks.metrics import psnr
from randmix_bench.tensors import to_unit
from randmix_bench.threat import same_eps
from randmix_bench.tolerance import DEFAULT_SIGMAS, DEVICE_FLIPS, DEVICE_PSNR_DB, TOLERANCE_RULE, tolerance
from randmix_bench.vocab import AAAttack, Mixing

__all__ = ["Check", "VerifyOptions", "VerifyLog", "DEFAULT_N", "DEFAULT_SIGMAS", "DEVICE_FLIPS", "DEVICE_PSNR_DB",
           "TOLERANCE_RULE", "tolerance", "verify", "verify_entry", "failures"]

DEFAULT_N = 500


@dataclass(frozen=True)
class VerifyOptions:
    """How entries are re-checked (``randmix verify``'s defaults): on the CPU, on few points, in minutes."""

    n: int = DEFAULT_N  # test points re-measured per entry, capped at the entry's recorded n
    sigmas: float = DEFAULT_SIGMAS  # sampling tolerance in standard errors
    data_dir: str | Path | None = None  # where the test sets are (see randmix_bench.data)
    batch_size: int = 250
    device: str = "cpu"
    robust: bool = True  # re-attack each robustness entry (minutes per large model on a CPU)
    full_test: bool = True  # clean_acc_full_test on every test point (else on n random ones: a large model's minutes)

    def __post_init__(self) -> None:
        """A tolerance that is nan or negative would pass or fail every entry, a batch of 0 points never ends:
        refused in one line before any entry is checked."""
        if self.n < 1:
            raise RandmixError(f"n must be >= 1, got {self.n}")
        if not (math.isfinite(self.sigmas) and self.sigmas >= 0):
            raise RandmixError(f"the tolerance (--sigmas) must be a finite number >= 0, got {self.sigmas}")
        if self.batch_size < 1:
            raise RandmixError(f"batch size must be >= 1, got {self.batch_size}")


@dataclass
class Check:
    """One entry's verification, numbers in the units shown (percent or dB); ``problem`` None = passed."""

    entry: str
    model: str
    mixing: str
    metric: str  # "clean %", "PSNR dB" or "robust % (<attack>)"
    sha256_ok: bool
    n_recorded: int
    n_checked: int | None = None
    recorded: float | None = None
    measured: float | None = None
    tolerance: float | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


Measurement = tuple[float, float, float]  # (mean, per-point sd, device allowance), in the metric's units


def _clean_accuracy(net: nn.Module, meta: dict[str, Any], split: ImageSplit, batch_size: int, device: str,
                    recorded: float) -> Measurement:
    """Clean accuracy in %; sd is the recorded accuracy's binomial one."""
    correct = predict(net, split.images, batch_size, torch.device(device)) == split.labels
    p = recorded / 100
    return 100 * correct.float().mean().item(), 100 * math.sqrt(p * (1 - p)), 100 * DEVICE_FLIPS / len(split)


def _psnr(net: nn.Module, meta: dict[str, Any], split: ImageSplit, batch_size: int, device: str,
          recorded: float) -> Measurement:
    """Mean reconstruction PSNR in dB, with the permutation the checkpoint was trained on."""
    task = ShuffleTask.from_record(meta["extra"].get("task", {}))
    values = psnr(task.reconstruct(net, split.images, batch_size, device), to_unit(split.images))
    return values.mean().item(), values.std().item() if len(values) > 1 else 0.0, DEVICE_PSNR_DB


def _robust_attack(attacks: list[AAAttack]) -> AAAttack | None:
    """The strongest white-box attack of a list: APGD-CE when it holds it, else its first white-box one."""
    whitebox = [a for a in attacks if a not in BLACK_BOX]
    return AAAttack.APGD_CE if AAAttack.APGD_CE in whitebox else next(iter(whitebox), None)


def _robust_check(entry: Entry, net: nn.Module, split: ImageSplit, n_recorded: int, sigmas: float,
                  batch_size: int, device: str, source: nn.Module | None = None) -> Check | None:
    """Re-run the entry's strongest white-box attack as the entry configured it (its AutoAttack version's
    settings, seed, eps, iterations) on ``split``, on the ``source`` model of a transfer attack; None when the
    entry ran no white-box attack."""
    rb = entry.randmix
    attack = _robust_attack(rb.attack.attacks)
    if attack is None:
        return None
    m = len(split)
    config = rb.attack.model_copy(update={"attacks": [attack], "batch_size": batch_size})
    outcome = robust_accuracy(net, split.images, split.labels, config, device=device, source=source)
    measured = 100 * outcome.robust_acc
    # the entry's first attack ran alone from the clean points, as here: its recorded number is checked both ways
    alone = rb.attack.attacks[0] == attack and attack in rb.per_attack_robust_acc
    recorded = 100 * rb.per_attack_robust_acc[attack] if alone else float(entry.robustness.autoattack_acc)
    p = recorded / 100
    tol = tolerance(100 * math.sqrt(p * (1 - p)), m, n_recorded, 100 * DEVICE_FLIPS / m, sigmas)
    check = Check(entry.rel, rb.model, rb.mixing, f"robust % ({attack})", True, n_recorded, n_checked=m,
                  recorded=recorded, measured=measured, tolerance=tol)
    if recorded - measured > tol:
        check.problem = (f"robust check: recorded robust accuracy {recorded:.2f} on {n_recorded} points is above the "
                         f"{measured:.2f} that {attack} alone leaves on the first {m} (tolerance +{tol:.2f})")
    elif alone and measured - recorded > tol:
        check.problem = (f"robust check: recorded robust accuracy after {attack} {recorded:.2f} on {n_recorded} points "
                         f"is below the {measured:.2f} it leaves on the first {m} (tolerance -{tol:.2f}): the number "
                         "was lowered, or the attack is not the one recorded")
    else:
        check.problem = (_unbroken_problem(rb, net, split, outcome.robust, attack, batch_size, device)
                         or _sweep_problem(rb, net, split, outcome.robust, n_recorded, sigmas, batch_size, device))
    return check


def _sweep_problem(rb: RandmixBlock, net: nn.Module, split: ImageSplit, survived: torch.Tensor, n_recorded: int,
                   sigmas: float, batch_size: int, device: str) -> str | None:
    """The robustness curve (``sweep``) is bounded from above like the headline: at each of its other eps, that
    point's strongest white-box attack is re-run on the points the eps below it left (as the evaluation went upwards;
    below the headline, from every point), and a recorded accuracy above what it leaves, beyond the tolerance, fails."""
    m = len(split)
    chain = torch.ones(m, dtype=torch.bool)
    for point in sorted(rb.sweep, key=lambda p: p.eps_value):
        if same_eps(point.eps_value, rb.eps_value):
            chain &= survived  # the headline's points, re-attacked above
            continue
        attack = _robust_attack(point.attacks or rb.attack.attacks)
        if attack is None:
            continue
        config = rb.attack.model_copy(update={"attacks": [attack], "eps": point.eps_value, "batch_size": batch_size})
        index = chain.nonzero().flatten()
        chain = torch.zeros(m, dtype=torch.bool)
        if len(index):
            chain[index] = robust_accuracy(net, split.images[index], split.labels[index], config, device=device).robust
        recorded, measured = 100 * point.robust_acc, 100 * chain.float().mean().item()
        tol = tolerance(100 * math.sqrt(point.robust_acc * (1 - point.robust_acc)), m, n_recorded,
                        100 * DEVICE_FLIPS / m, sigmas)
        if recorded - measured > tol:
            return (f"robust check: the sweep's recorded robust accuracy at eps {point.eps} {recorded:.2f} is above "
                    f"the {measured:.2f} that {attack} leaves on the first {m} (tolerance +{tol:.2f})")
    return None


def _unbroken_problem(rb: RandmixBlock, net: nn.Module, split: ImageSplit, survived: torch.Tensor, attack: AAAttack,
                      batch_size: int, device: str) -> str | None:
    """A point recorded as broken must be breakable. Points among the first m that the entry records as clean and
    broken (``points``) but that ``attack`` left standing here are attacked with the entry's other attacks, in its
    order: more than :data:`DEVICE_FLIPS` that survive them all mean the robust accuracy was lowered by hand (the
    later attacks' numbers and the per-point outcomes edited together, which the first attack alone cannot see)."""
    points, m = rb.points, len(split)
    if points is None or points.indices[:m] != list(range(m)) or rb.attack.source is not None:
        return None
    broken = torch.tensor(points.clean[:m], dtype=torch.bool) & ~torch.tensor(points.robust[:m], dtype=torch.bool)
    claimed = (broken & survived).nonzero().flatten()
    if len(claimed) <= DEVICE_FLIPS:
        return None
    others = [a for a in rb.attack.attacks if a != attack]
    standing = len(claimed)
    if others:
        config = rb.attack.model_copy(update={"attacks": others, "batch_size": batch_size})
        standing = int(robust_accuracy(net, split.images[claimed], split.labels[claimed], config,
                                       device=device).robust.sum())
    if standing <= DEVICE_FLIPS:
        return None
    return (f"robust check: {standing} of the first {m} points are recorded as broken (points.robust) but survive "
            f"every attack of the entry ({', '.join(rb.attack.attacks)}) here (allowance {DEVICE_FLIPS}): the robust "
            "accuracy was lowered")


def _per_point_problem(correct: torch.Tensor, recorded: list[int], what: str) -> str | None:
    """Per-point outcomes recorded for the first points must be what the model does on them, up to the device
    allowance of :data:`DEVICE_FLIPS` flipped predictions."""
    flips = int((correct.int() != torch.tensor(recorded[: len(correct)])).sum())
    if flips > DEVICE_FLIPS:
        return (f"{what}: {flips} of the first {len(correct)} recorded per-point outcomes are not what the checkpoint "
                f"predicts (allowance {DEVICE_FLIPS})")
    return None


def _full_test_problem(rb: RandmixBlock, net: nn.Module, test: ImageSplit, m: int | None, sigmas: float,
                       batch_size: int, device: str) -> str | None:
    """clean_acc_full_test re-derived from the checkpoint on every point of the test set (``m`` None), or on ``m``
    points drawn at random (a fixed sample could be dodged by editing only the points it leaves out): per point
    against ``full_test_clean`` when recorded, else the mean; either way up to :data:`DEVICE_FLIPS` flips."""
    if rb.clean_acc_full_test is None:
        return None
    n = len(test)
    index = torch.arange(n) if m is None or m >= n else torch.randperm(n, generator=_unseeded())[:m].sort().values
    correct = predict(net, test.images[index], batch_size, torch.device(device)) == test.labels[index]
    where = "every test point" if len(index) == n else f"{len(index)} random test points"
    if rb.full_test_clean is not None:
        if len(rb.full_test_clean) != n:
            return f"full_test_clean holds {len(rb.full_test_clean)} outcomes, the test set {n} points"
        flips = int((correct.int() != torch.tensor(rb.full_test_clean)[index]).sum())
        if flips > DEVICE_FLIPS:
            return (f"clean_acc_full_test: {flips} per-point outcomes (full_test_clean) of {where} are not what the "
                    f"checkpoint predicts (allowance {DEVICE_FLIPS})")
        return None
    p, measured = rb.clean_acc_full_test, correct.float().mean().item()
    tol = tolerance(math.sqrt(p * (1 - p)), len(index), n, DEVICE_FLIPS / len(index), sigmas)
    if abs(measured - p) > tol:
        return f"clean_acc_full_test {100 * p:.2f} vs {100 * measured:.2f} on {where} (tolerance ±{100 * tol:.2f})"
    return None


def _unseeded() -> torch.Generator:
    """A generator no one can predict (seeded from the OS), for samples a hand edit must not be able to avoid."""
    return torch.Generator().manual_seed(secrets.randbits(63))


class VerifyLog:
    """What ``randmix verify --log FILE`` has checked, one JSON line per entry, appended as each entry is done: a
    run that is killed keeps every entry it finished, and a rerun with the same log takes those entries from it.
    A line counts only for the same result file content, checkpoint and options; anything else is checked again."""

    def __init__(self, path: str | Path, options: VerifyOptions) -> None:
        self.path, self.options = Path(path), {k: str(v) for k, v in asdict(options).items()}
        self.done: dict[str, tuple[str, list[Check]]] = {}
        if self.path.exists() or self.path.is_symlink():  # a regular file of a sane size: a FIFO would block
            lines = read_regular(self.path, "--log", MAX_JSON_BYTES).splitlines()
            try:
                for line in lines:
                    if line.strip():
                        record = parse_json(line, "a line")
                        if record["options"] == self.options:
                            self.done[record["entry"]] = (record["key"], [Check(**c) for c in record["checks"]])
            except (ValueError, KeyError, TypeError) as e:  # a RandmixError: a line that is not JSON, and why
                why = str(e) if isinstance(e, RandmixError) else type(e).__name__
                raise RandmixError(f"--log {self.path} is not a verify log ({why}); delete it or pass another "
                                   "file") from None

    @staticmethod
    def key(entry: Entry) -> str:
        return f"{sha256(entry.path)}:{sha256(entry.checkpoint) if entry.checkpoint.is_file() else '-'}"

    def checked(self, entry: Entry) -> list[Check] | None:
        """The entry's checks from an earlier run, when its files are unchanged."""
        key, checks = self.done.get(entry.rel, ("", []))
        return checks if key and key == self.key(entry) else None

    def add(self, entry: Entry, checks: list[Check]) -> None:
        record = {"entry": entry.rel, "key": self.key(entry), "options": self.options,
                  "checks": [asdict(c) for c in checks]}
        with self.path.open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()


def verify(entries: list[Entry], options: VerifyOptions = VerifyOptions(),
           progress: Callable[[str], None] | None = None, checked: Callable[[list[Check]], None] | None = None,
           fail_fast: bool = False, log: VerifyLog | None = None) -> list[Check]:
    """Check every entry's checkpoint hash, that it rebuilds the model the entry names, and its headline
    numbers on the first ``min(options.n, recorded n)`` test points: a robustness entry that ran a white-box
    attack gets a second row, its robust accuracy re-checked (see :data:`TOLERANCE_RULE`), unless
    ``options.robust`` is False (an attack of a large model on the CPU takes minutes). Each test set is loaded
    once; ``progress`` hears which entry is being checked, ``checked`` gets each entry's checks when it is done
    (also those taken from ``log``, which records every entry checked here). ``fail_fast`` stops after the first
    entry that fails."""
    splits: dict[str, ImageSplit | Exception] = {}
    checks: list[Check] = []
    copies = relabelled_weights(entries)
    for entry in entries:
        earlier = log.checked(entry) if log is not None else None
        if earlier is None:
            if progress:
                progress(f"checking {entry.rel}")
            entry_checks = verify_entry(entry, options, splits, progress)
            if log is not None:
                log.add(entry, entry_checks)
        else:
            entry_checks = earlier
        if entry.rel in copies and entry_checks[0].ok:
            entry_checks[0].problem = copies[entry.rel]
        checks += entry_checks
        if checked:
            checked(entry_checks)
        if fail_fast and not all(c.ok for c in entry_checks):
            break
    return checks


def verify_entry(entry: Entry, options: VerifyOptions, splits: dict[str, ImageSplit | Exception],
                 progress: Callable[[str], None] | None = None) -> list[Check]:
    """One entry's checks (see :func:`verify`); ``splits`` caches the test sets loaded so far."""
    n, sigmas, batch_size, device = options.n, options.sigmas, options.batch_size, options.device
    checks: list[Check] = []
    if entry.is_robustness:
        rb = entry.randmix
        model, mixing, dataset, n_recorded = rb.model, rb.mixing, rb.dataset, rb.n_examples
        metric, recorded, measure = "clean %", 100 * rb.clean_acc, _clean_accuracy
    else:
        r = entry.shuffle
        model, mixing, dataset, n_recorded = r.model, r.mixing, r.dataset, r.n_examples
        metric, recorded, measure = "PSNR dB", r.psnr, _psnr
    ref = entry.checkpoint_ref
    check = Check(entry.rel, model, mixing, metric, sha256(entry.checkpoint) == ref.sha256, n_recorded,
                  recorded=recorded)
    checks.append(check)
    if not check.sha256_ok:
        check.problem = f"sha256 of {entry.checkpoint} is not the recorded {ref.sha256[:12]}…"
        return checks
    try:
        net, meta = load_model(entry.checkpoint, map_location=device)
    except CheckpointError as e:
        check.problem = str(e)
        return checks
    if ref.weights_sha256 is not None and weights_digest(net.state_dict()) != ref.weights_sha256:
        check.problem = f"the weights of {entry.checkpoint} are not the recorded {ref.weights_sha256[:12]}…"
        return checks
    held = (meta["model"], meta["model_kwargs"].get("mixing", Mixing.FULL))
    if held != (model, mixing):
        check.problem = f"checkpoint holds {held[0]} ({held[1]}), the entry says {model} ({mixing})"
        return checks
    check.problem = (label_problem(entry, net, meta) or trace_problem(entry, meta)
                     or (attack_problem(entry.randmix) if entry.is_robustness else None) or source_problem(entry))
    if check.problem is not None:
        return checks
    if dataset not in splits:
        try:
            splits[dataset] = load_split(dataset, train=False, data_dir=options.data_dir)
        except (FileNotFoundError, ValueError) as e:
            splits[dataset] = e
    split = splits[dataset]
    if isinstance(split, Exception):
        check.problem = f"test data unavailable: {split}"
        return checks
    if n_recorded > len(split):
        check.problem = f"the entry says it measured {n_recorded} points; the {dataset} test set has {len(split)}"
        return checks
    m = min(n, n_recorded)
    check.n_checked = m
    check.measured, sd, allowance = measure(net, meta, split.first(m), batch_size, device, recorded)
    check.tolerance = tolerance(sd, m, n_recorded, allowance, sigmas)
    if abs(check.measured - recorded) > check.tolerance:
        check.problem = (f"{metric} {check.measured:.2f} on the first {m} points vs recorded {recorded:.2f} "
                         f"on {n_recorded} (tolerance ±{check.tolerance:.2f})")
    elif entry.is_robustness:
        rb = entry.randmix
        first = split.first(m)
        correct = predict(net, first.images, batch_size, torch.device(device)) == first.labels
        check.problem = ((_per_point_problem(correct, rb.points.clean, "points.clean")
                          if rb.points is not None and rb.points.indices[:m] == list(range(m)) else None)
                         or _full_test_problem(rb, net, split, None if options.full_test else m, sigmas,
                                               batch_size, device))
    if entry.is_robustness and options.robust:
        if progress:
            progress(f"re-attacking {entry.rel}")
        source = None if entry.source is None else load_model(entry.source, map_location=device)[0]
        robust_check = _robust_check(entry, net, split.first(m), n_recorded, sigmas, batch_size, device, source)
        checks.extend([robust_check] if robust_check is not None else [])
    return checks


def failures(checks: list[Check]) -> list[str]:
    """One line per failed check (an entry may fail its clean and its robust check): which, and why."""
    return [f"{c.entry} ({c.model}, {c.mixing}): {c.problem}" for c in checks if not c.ok]
