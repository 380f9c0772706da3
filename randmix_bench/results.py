"""Result files: the JSON that ``randmix eval`` and ``randmix shuffle eval`` write and the leaderboard reads.

A robustness result is a RobustBench ``model_info`` file (same field names, accuracies as percentage
strings rounded to 2 decimals, eps as RobustBench writes it, e.g. ``"8/255"``) with one extra block,
``randmix``, that says exactly how the number was produced. A shuffle result is our own format, marked
``"track": "shuffle"``. Both are validated by these schemas, on write and on read
(:mod:`randmix_bench.result_files`), so a bad entry is never dropped silently.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import PurePosixPath
from typing import Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from randmix_bench.errors import RandmixError
from randmix_bench.loss_curve import LossTrace
from randmix_bench.result_fields import (
    MAX_N_ITER,
    MAX_N_QUERIES,
    Count,
    Epochs,
    EpochsDone,
    Finite,
    Fraction,
    Index,
    NonNegative,
    Outcomes,
    Percent,
    PngName,
    Positive,
    Seed,
    Sha256,
)
from randmix_bench.threat import ThreatModel, same_eps
from randmix_bench.vocab import AAAttack, AAVersion, Attack, Loss, Mixing, Norm, n_epochs

__all__ = ["Provenance", "CheckpointRef", "AttackConfig", "SanityReport", "SweepPoint", "Points", "RandmixBlock",
           "RobustnessResult", "ShuffleResult", "Result", "pct"]


def pct(fraction: float) -> str:
    """RobustBench's accuracy format: a percentage string with 2 decimals, e.g. ``"59.53"``."""
    return f"{100 * fraction:.2f}"


def _at_most_clean(value: float, info: ValidationInfo, what: str) -> None:
    """Robust accuracy counts points that stayed correct under attack, so it cannot exceed clean accuracy."""
    clean = info.data.get("clean_acc")
    if clean is not None and value > clean:
        raise ValueError(f"{what} {value} exceeds clean_acc {clean}: robust accuracy cannot be above clean")


def _test_set_size(dataset: str) -> int | None:
    """The test-set size of a dataset the project knows by name (None for an image folder): no result can have
    evaluated more points than that, and verify's tolerance depends on the recorded number."""
    from randmix_bench.data import DATASETS  # lazily: reading a result needs no torch otherwise

    info = DATASETS.get(dataset)
    return None if info is None else info.test_size


def _refuse(field: str, message: str) -> NoReturn:
    """A consistency failure of the ``randmix`` block, naming its field (read_result shows it as written)."""
    raise ValueError(f"field 'randmix.{field}': {message}")


def _same_count(a: float, b: float) -> bool:
    """Whether two accuracies are the same count of points: results written before accuracies were exact counts
    kept clean and robust accuracy as float32 means (0.6660000085830688 for 333/500)."""
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-6)


def _check_n(n: int, dataset: str, what: str = "n_examples") -> None:
    size = _test_set_size(dataset)
    if size is not None and n > size:
        raise ValueError(f"{what} {n} is more than the {size:,} points of the {dataset} test set")


def _check_eps_text(text: str, value: float, norm: Norm, where: str) -> None:
    """An eps as written must say the number recorded beside it: both are what readers and verdicts use."""
    try:
        parsed = ThreatModel.parse(norm, text).eps.value
    except RandmixError as e:
        raise ValueError(f"{where} {text!r}: {e}") from None
    if not same_eps(parsed, value):
        raise ValueError(f"{where} {text!r} is {parsed!r}, not the recorded eps_value {value!r}; regenerate the file "
                         "with randmix eval")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provenance(_Strict):
    """Where and how a number was measured."""

    device: str  # e.g. "NVIDIA H100 80GB HBM3" or "cpu (2 cores)"
    date: str  # ISO 8601, UTC
    wall_time_s: NonNegative
    versions: dict[str, str]  # torch, timm, pyautoattack, randmix_bench, ...
    command: str = ""  # the command line that produced the file
    git_revision: str = ""
    threads: int | None = Field(default=None, ge=1)  # torch's intra-op threads on the CPU (None: not recorded)


class CheckpointRef(_Strict):
    """Where a result's checkpoint is: ONE rule, written by :func:`randmix_bench.result_files.checkpoint_ref`, read
    by :func:`randmix_bench.result_files.resolve_checkpoint`.

    ``path`` is posix and relative to the result's folder or to the nearest folder above it that holds
    the checkpoint (``x.safetensors`` beside ``leaderboards/cifar10/Linf/x.json``; ``checkpoints/x.safetensors``
    for ``leaderboards/checkpoints/``). Never absolute, never ``..``: a reader only follows it inside its root."""

    path: str
    sha256: Sha256  # of the file's bytes
    # of the weights themselves (names, dtypes, shapes, values: randmix_bench.checkpoint.weights_digest), so that a
    # checkpoint whose metadata changed is still the same run; None on results written before it was recorded
    weights_sha256: Sha256 | None = None

    @field_validator("path")
    @classmethod
    def _relative_inside(cls, value: str) -> str:
        path = PurePosixPath(value)
        if (path.is_absolute() or ".." in path.parts or "\\" in value or "\0" in value
                or path.as_posix() != value or value == "."):
            raise ValueError(f"{value!r} must be a plain relative path (no '/' at the start, no '..', no '\\'); "
                             "put the checkpoint beside the result and record its file name")
        return value


class AttackConfig(_Strict):
    attack: Attack
    version: AAVersion = AAVersion.STANDARD
    attacks: list[AAAttack] = Field(default_factory=list)  # the attacks actually run, in order
    norm: Norm
    eps: float
    seed: Seed = 0
    batch_size: int = Field(default=500, ge=1)
    # APGD/FAB/PGD iterations when not the attack's default (custom versions only)
    n_iter: int | None = Field(default=None, ge=1, le=MAX_N_ITER)
    # Square queries when not AutoAttack's 5000 (custom versions only)
    n_queries: int | None = Field(default=None, ge=1, le=MAX_N_QUERIES)
    source: CheckpointRef | None = None  # transfer: the model the adversarial examples were made on

    @property
    def is_aa_standard(self) -> bool:  # AutoAttack's standard set: what RobustBench ranks by
        return self.attack is Attack.AUTOATTACK and self.version is AAVersion.STANDARD


class SanityReport(_Strict):
    """Gradient-masking checks (``randmix eval --sanity``)."""

    passed: bool
    large_eps: Positive
    large_eps_robust_acc: Fraction  # ~0 for a model that is not masking gradients
    square_robust_acc: Fraction | None = None  # black-box Square on the same points
    whitebox_robust_acc: Fraction | None = None
    autoattack_flags: list[str] = Field(default_factory=list)  # AutoAttack's own warnings
    notes: list[str] = Field(default_factory=list)


class SweepPoint(_Strict):
    eps: str  # as given, e.g. "2/255"
    eps_value: Positive
    robust_acc: Fraction
    attacks: list[AAAttack] | None = None  # when not the evaluation's own attacks (a cheaper sweep)


class Points(_Strict):
    """Per-point outcomes on the attacked points, so that variants attacked on the same points can be compared
    point by point (paired) and every accuracy can be recounted: ``clean`` 1 = classified correctly, ``robust``
    1 = still correct after every attack of the evaluation."""

    indices: list[Index]  # into the dataset's documented test order (randmix_bench.data)
    clean: Outcomes
    robust: Outcomes

    @model_validator(mode="after")
    def _consistent(self) -> Points:
        if not len(self.indices) == len(self.clean) == len(self.robust):
            raise ValueError(f"points: indices, clean and robust have lengths {len(self.indices)}, {len(self.clean)}, "
                             f"{len(self.robust)}; they must be equal")
        if len(set(self.indices)) != len(self.indices):
            raise ValueError("points: an index appears twice")
        if any(r > c for c, r in zip(self.clean, self.robust, strict=True)):
            raise ValueError("points: a point is robust but not clean (robust counts points that stayed correct)")
        return self


class RandmixBlock(_Strict):
    """How a robustness number was produced: the part RobustBench's format has no room for."""

    model: str  # timm name, e.g. randmix_convmixer_256_8
    mixing: Mixing
    mixer_seed: Seed
    smooth_sigma: NonNegative
    train_seed: Seed | None = None
    train_recipe: str | None = None  # the trainer's recipe and epochs: part of what defines a variant
    train_epochs: Epochs | None = None
    dataset: str  # our dataset name, e.g. cifar10-jpeg (never "cifar10" for the JPEG copy)
    threat_model: Norm
    eps_value: Positive
    n_examples: int = Field(ge=1)
    attack: AttackConfig
    clean_acc: Fraction  # on the same n_examples points
    robust_acc: Fraction  # after all attacks
    per_attack_robust_acc: dict[str, Fraction] = Field(default_factory=dict)  # after each attack
    clean_acc_full_test: Fraction | None = None  # whole test set
    points: Points | None = None  # per-point outcomes on the n_examples points (None on results written before)
    full_test_clean: Outcomes | None = None  # 0/1 per point of the whole test set, in its documented order
    params_trainable: Count
    params_frozen: Count
    checkpoint: CheckpointRef
    provenance: Provenance
    sanity: SanityReport | None = None
    sweep: list[SweepPoint] = Field(default_factory=list)
    curve_png: PngName | None = None
    # attack time per stage and attack, e.g. "eps=8/255 apgd-t", summed over resumed parts
    attack_time_s: dict[str, NonNegative] = Field(default_factory=dict)
    # AutoAttack's own warnings, with or without --sanity; any marks the entry unreliable
    autoattack_flags: list[str] = Field(default_factory=list)
    resumed: bool = False  # finished a killed evaluation from its .eval-state file

    @model_validator(mode="after")
    def _numbers_agree(self) -> RandmixBlock:
        """Every number that is recorded twice must agree, so that no single one can be edited alone: the attack's
        norm and eps are the threat model's; the robust accuracy is what the last attack left
        (``per_attack_robust_acc``, in the order the attacks ran, never rising) and what the sweep measured at the
        same eps with the same attacks; each sweep eps says its number, and the sweep never rises with eps; n fits the
        test set."""
        attack, per_attack, robust = self.attack, self.per_attack_robust_acc, self.robust_acc
        if attack.norm != self.threat_model or not same_eps(attack.eps, self.eps_value):
            _refuse("threat_model", f"{self.threat_model} eps_value {self.eps_value!r} is not the attack's norm "
                    f"{attack.norm} eps {attack.eps!r}")
        if per_attack:
            if set(per_attack) != set(attack.attacks):
                _refuse("per_attack_robust_acc", f"names {sorted(per_attack)}, the attacks run {attack.attacks}")
            steps = [self.clean_acc] + [per_attack[a] for a in attack.attacks]
            if any(later > earlier for earlier, later in pairwise(steps)):
                _refuse("per_attack_robust_acc", f"rises along the attacks {attack.attacks} ({steps[1:]}): each "
                        "attack only runs on the points the earlier ones left")
            if not _same_count(per_attack[attack.attacks[-1]], robust):
                _refuse("robust_acc", f"{robust!r} is not {per_attack[attack.attacks[-1]]!r}, what the last attack "
                        f"({attack.attacks[-1]}) left in per_attack_robust_acc")
        elif attack.attack == Attack.NONE and not _same_count(robust, self.clean_acc):
            _refuse("robust_acc", f"{robust!r} differs from clean_acc {self.clean_acc!r}, but no attack ran")
        for point in self.sweep:
            _check_eps_text(point.eps, point.eps_value, self.threat_model, "field 'randmix.sweep': eps")
            if (same_eps(point.eps_value, self.eps_value) and point.attacks in (None, attack.attacks)
                    and not _same_count(point.robust_acc, robust)):
                _refuse("sweep", f"robust accuracy {point.robust_acc!r} at eps {point.eps} is not robust_acc "
                        f"{robust!r}, measured at the same eps with the same attacks")
        for smaller, larger in pairwise(sorted(self.sweep, key=lambda p: p.eps_value)):
            if larger.robust_acc > smaller.robust_acc and not _same_count(larger.robust_acc, smaller.robust_acc):
                _refuse("sweep", f"robust accuracy rises from {smaller.robust_acc!r} at eps {smaller.eps} to "
                        f"{larger.robust_acc!r} at eps {larger.eps}: each eps attacks only the points the smaller left")
        _check_n(self.n_examples, self.dataset, "field 'randmix.n_examples':")
        size = _test_set_size(self.dataset)
        full = self.full_test_clean
        if full is not None:
            if size is not None and len(full) != size:
                _refuse("full_test_clean", f"holds {len(full)} outcomes, not one per point of the {size:,}-point "
                        f"{self.dataset} test set")
            if self.n_examples > len(full):
                _refuse("n_examples", f"{self.n_examples} is more than the {len(full)} test points of full_test_clean")
            points = self.points
            if points is not None and points.indices == list(range(self.n_examples)) \
                    and full[: self.n_examples] != points.clean:
                _refuse("full_test_clean", "its first n_examples outcomes are not points.clean (the same points, "
                        "classified by the same model)")
            size = len(full)
        if self.points is not None and size is not None and any(i >= size for i in self.points.indices):
            _refuse("points", f"an index is outside the {size:,}-point test set")
        return self

    @model_validator(mode="after")
    def _counts_match(self) -> RandmixBlock:
        """Accuracies are counts over points: the recorded fractions must be what the outcomes count."""
        if self.points is not None:
            n = len(self.points.clean)
            if n != self.n_examples:
                raise ValueError(f"points: {n} outcomes for n_examples {self.n_examples}")
            for what, outcomes, acc in (("clean_acc", self.points.clean, self.clean_acc),
                                        ("robust_acc", self.points.robust, self.robust_acc)):
                if acc != sum(outcomes) / n:
                    raise ValueError(f"{what} {acc!r} is not the {sum(outcomes)}/{n} points its outcomes count")
        if self.full_test_clean is not None:
            counted = sum(self.full_test_clean) / len(self.full_test_clean)
            if self.clean_acc_full_test != counted:
                raise ValueError(f"clean_acc_full_test {self.clean_acc_full_test!r} is not the "
                                 f"{sum(self.full_test_clean)}/{len(self.full_test_clean)} its outcomes count")
        return self

    @field_validator("robust_acc")
    @classmethod
    def _robust_at_most_clean(cls, value: float, info: ValidationInfo) -> float:
        _at_most_clean(value, info, "robust_acc")
        return value

    @field_validator("per_attack_robust_acc")
    @classmethod
    def _per_attack_at_most_clean(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        for attack, acc in value.items():
            _at_most_clean(acc, info, f"robust accuracy after {attack!r}")
        return value

    @field_validator("sweep")
    @classmethod
    def _sweep_at_most_clean(cls, value: list[SweepPoint], info: ValidationInfo) -> list[SweepPoint]:
        for point in value:
            _at_most_clean(point.robust_acc, info, f"robust accuracy at eps {point.eps}")
        return value


class RobustnessResult(BaseModel):
    """RobustBench ``model_info`` fields plus the ``randmix`` block."""

    model_config = ConfigDict(extra="forbid")

    link: str | None = None
    name: str
    authors: str | None = None
    additional_data: bool = False
    number_forward_passes: int = 1
    dataset: str  # RobustBench's field: our dataset name
    venue: str | None = None
    architecture: str
    eps: str
    clean_acc: Percent
    reported: str | None = None
    autoattack_acc: Percent
    footnote: str | None = None
    unreliable: bool = False
    randmix: RandmixBlock

    @model_validator(mode="after")
    def _percentages_match_fractions(self) -> RobustnessResult:
        """The RobustBench strings are what tables show, the fractions what claims use: they must agree,
        at the precision the string is written in, or a hand-edited number would rank with no trace."""
        for field, fraction in (("autoattack_acc", self.randmix.robust_acc), ("clean_acc", self.randmix.clean_acc)):
            text: str = getattr(self, field)
            decimals = len(text.partition(".")[2])
            if text != f"{100 * fraction:.{decimals}f}":
                source = "robust_acc" if field == "autoattack_acc" else "clean_acc"
                raise ValueError(f"field {field!r}: {text!r} is not randmix.{source} {fraction!r} as a percentage "
                                 f"({pct(fraction)}); regenerate the file with randmix eval")
        _check_eps_text(self.eps, self.randmix.eps_value, self.randmix.threat_model, "field 'eps':")
        if self.dataset != self.randmix.dataset:
            raise ValueError(f"field 'dataset': {self.dataset!r} is not randmix.dataset {self.randmix.dataset!r}")
        if self.architecture != self.randmix.model:  # RobustBench's readers show it: verify checks randmix.model
            raise ValueError(f"field 'architecture': {self.architecture!r} is not randmix.model {self.randmix.model!r}")
        return self


class ShuffleResult(_Strict):
    """Pixel-shuffle decoding: how well a network undoes one fixed permutation of pixel positions."""

    track: Literal["shuffle"] = "shuffle"
    name: str
    model: str
    mixing: Mixing
    mixer_seed: Seed
    smooth_sigma: NonNegative
    train_seed: Seed | None = None
    permutation_seed: Seed
    dataset: str
    n_examples: int
    loss: Loss
    epochs: EpochsDone
    psnr: Finite  # dB, reconstruction vs original, mean over test images
    ssim: Finite
    identity_psnr: Finite  # the scrambled input itself, the baseline to beat
    identity_ssim: Finite
    mean_image_psnr: Finite | None = None  # the test set's per-pixel mean image: the best input-blind output
    mean_image_ssim: Finite | None = None
    params_trainable: Count
    params_frozen: Count
    checkpoint: CheckpointRef
    provenance: Provenance
    grid_png: PngName | None = None
    # the run's training-loss curve, [[epoch_fraction, loss], ...] (randmix_bench.loss_curve); None on results
    # written before it was recorded
    train_loss: LossTrace | None = None

    @model_validator(mode="after")
    def _n_fits(self) -> ShuffleResult:
        if self.n_examples < 1:
            raise ValueError(f"n_examples must be >= 1, got {self.n_examples}")
        _check_n(self.n_examples, self.dataset, "field 'n_examples':")
        if self.train_loss is not None and self.train_loss[-1][0] > self.epochs:
            raise ValueError(f"field 'train_loss': its last point is at epoch {self.train_loss[-1][0]:g}, after the "
                             f"{n_epochs(self.epochs)} trained")
        return self


Result = RobustnessResult | ShuffleResult
