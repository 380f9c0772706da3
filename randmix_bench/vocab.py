"""The project's vocabulary: every set of names a user or a file can give, declared once as a str enum.

Input is parsed where it arrives (a CLI option, a recipe, a result file) with :meth:`Choice.parse`, which
raises the one "unknown X; valid choices: ..." error; inside, code compares members. A member is a ``str``
whose ``str()`` and f-string are its value, so file names, Markdown and JSON read exactly as before.
RobustBench declares its vocabularies the same way (``robustbench.model_zoo.enums``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TypeVar

from randmix_bench.errors import choices_error

__all__ = ["Choice", "Mixing", "Norm", "Attack", "AAVersion", "AAAttack", "TaskKind", "Loss", "Optimizer", "Tier",
           "split_list", "n_epochs"]

C = TypeVar("C", bound="Choice")


class Choice(str, Enum):
    """A str enum that prints as its value and parses user input with one error wording.

    Subclasses name themselves for that error: ``class Norm(Choice, what="norm")``."""

    what: str
    unknown: str
    hint: str

    def __init_subclass__(cls, what: str = "", unknown: str = "unknown", hint: str = "", **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.what, cls.unknown, cls.hint = what, unknown, hint

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def parse(cls: type[C], value: object, allowed: tuple[C, ...] | None = None) -> C:
        """``value`` as a member (of ``allowed`` when given), or a :class:`RandmixError` listing the choices."""
        choices = allowed if allowed is not None else tuple(cls)
        try:
            member = cls(value)
        except ValueError:
            member = None
        if member is None or member not in choices:
            raise choices_error(cls.what, value, choices, cls.unknown, cls.hint)
        return member

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(str(m) for m in cls)


class Mixing(Choice, what="mixing mode"):
    """Which side of each separable convolution is learned."""

    FULL = "full"  # both learned: the baseline
    CHANS = "chans"  # spatial (depthwise) frozen at random init, channel (pointwise) learned
    SPACE = "space"  # channel (pointwise) frozen at random init, spatial (depthwise) learned
    CHANS_SMOOTH = "chans-smooth"  # like chans, with the frozen spatial filters Gaussian-smoothed

    @property
    def frozen_side(self) -> str | None:
        """``"spatial"``, ``"channel"`` or ``None`` (nothing frozen)."""
        return {Mixing.FULL: None, Mixing.SPACE: "channel"}.get(self, "spatial")


class Norm(Choice, what="norm", unknown="unsupported", hint=" (RobustBench's threat models)"):
    LINF = "Linf"
    L2 = "L2"


class Attack(Choice, what="attack"):
    NONE = "none"
    AUTOATTACK = "autoattack"
    APGD_CE = "apgd-ce"
    PGD = "pgd"
    SQUARE = "square"
    TRANSFER = "transfer"  # APGD-CE examples made on another model (--transfer-from), judged on this one


class AAVersion(Choice, what="AutoAttack version"):
    STANDARD = "standard"
    PLUS = "plus"
    CUSTOM = "custom"
    RAND = "rand"  # for randomized defenses: readable in a result, never run here (ours are deterministic)


class AAAttack(Choice, what="attack"):
    """One attack of an AutoAttack run (``--attacks``, a result's ``attacks``), or our PGD."""

    APGD_CE = "apgd-ce"
    APGD_DLR = "apgd-dlr"
    APGD_T = "apgd-t"
    FAB = "fab"
    FAB_T = "fab-t"
    SQUARE = "square"
    PGD = "pgd"  # randmix_bench.robustness.attacks.pgd_attack, not one of AutoAttack's


class TaskKind(Choice, what="task"):
    """What a model is trained to do (``TrainConfig.task``); each has its class in ``randmix_bench.tasks``."""

    CLASSIFICATION = "classification"  # cross-entropy, scored by clean and robust accuracy
    SHUFFLE = "shuffle"  # undo a fixed random pixel permutation (claim 3), scored by PSNR / SSIM


class Loss(Choice, what="loss"):
    """The pixel-shuffle task's reconstruction loss."""

    MSE = "mse"
    L1 = "l1"


class Optimizer(Choice, what="optimizer"):
    ADAMW = "adamw"
    SGD = "sgd"  # with Nesterov momentum


class Tier(Choice, what="tier"):
    """The tiers of ``randmix reproduce``."""

    SMOKE = "smoke"  # seconds on a CPU: the tiny model on synthetic data, to check a machine or the pipeline
    SMALL = "small"  # a smoke test of the pipeline on a 2-core CPU
    MEDIUM = "medium"  # the study that can test the claims on a 2-core CPU, run over several sittings
    PAPER_SLICE = "paper-slice"  # ConvMixer-256/8 at the medium tier's protocol (GPU)
    PAPER = "paper"  # the paper's scale, on a GPU


def split_list(items: str | Sequence[str]) -> list[str]:
    """``"apgd-ce, square"`` (or a list of such items) -> ``["apgd-ce", "square"]``: the one way a comma list (of
    names, of eps values) is read, so spaces after commas and empty items never become entries."""
    parts = items.split(",") if isinstance(items, str) else [p for item in items for p in item.split(",")]
    return [p.strip() for p in parts if p.strip()]


def n_epochs(n: float) -> str:
    """``1 epoch``, ``3 epochs``, ``2.5 epochs``: a training's length as every message and page words it."""
    return f"{n:g} epoch{'' if n == 1 else 's'}"
