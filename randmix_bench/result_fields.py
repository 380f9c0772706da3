"""The value types of a result file's fields: what each number or text may be, so that a hand edit that makes one
impossible (a negative count, a digest that is not one, a PNG path that leaves its folder) is refused when the
file is read, not found later by ``randmix verify``. :mod:`randmix_bench.results` builds its schemas from them."""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, Field

from randmix_bench.errors import MAX_SEED
from randmix_bench.loss_curve import MAX_EPOCHS

__all__ = ["MAX_N_ITER", "MAX_N_QUERIES", "Fraction", "Percent", "Finite", "Positive", "NonNegative", "Count", "Seed",
           "Index", "Epochs", "EpochsDone", "Sha256", "PngName", "Outcomes"]

MAX_N_ITER = 10_000
"""The most iterations an attack is run with (AutoAttack's are 100): each allocates a step-by-point record."""
MAX_N_QUERIES = 1_000_000
"""The most queries Square is run with (AutoAttack's are 5,000)."""


def _percent(text: str) -> str:
    """A RobustBench accuracy string must parse to a finite percentage: a table sorts and compares them."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a percentage") from None
    if not (math.isfinite(value) and 0 <= value <= 100):
        raise ValueError(f"{text!r} is not a percentage in [0, 100]")
    return text


Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
"""An accuracy as a fraction: finite and in [0, 1]."""
Percent = Annotated[str, AfterValidator(_percent)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
Index = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Epochs = Annotated[int, Field(ge=0, le=MAX_EPOCHS)]
"""Epochs trained: 0 for a model saved untrained."""
EpochsDone = Annotated[float, Field(ge=0, le=MAX_EPOCHS, allow_inf_nan=False)]
"""Epochs trained, where a run stopped part-way records a fraction."""
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest as the project writes it: 64 lowercase hex digits."""


def _file_name(value: str) -> str:
    """A file beside the result (its curve or grid PNG): a bare name, so a reader never follows it elsewhere."""
    if PurePosixPath(value).name != value or value in (".", "..") or "\\" in value or "\0" in value:
        raise ValueError(f"{value!r} must be the name of a file beside the result, with no folder")
    if not value.endswith(".png"):
        raise ValueError(f"{value!r} must name a .png file")
    return value


PngName = Annotated[str, AfterValidator(_file_name)]


Outcomes = Annotated[list[Annotated[int, Field(ge=0, le=1)]], Field(min_length=1)]
"""One 0/1 outcome per point, in the order of the points."""
