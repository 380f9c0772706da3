"""The project's own error types: bad input the user can fix, as opposed to bugs.

The CLI turns a :class:`RandmixError` (and only that) into one red line and exit code 2; any other
exception keeps its traceback, so a real bug is never disguised as a user mistake. The subclasses keep
the built-in type a caller would expect (``except FileNotFoundError`` still works).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

__all__ = ["RandmixError", "MissingError", "ExistsError", "choices_error", "check_seed", "check_finite_fields",
           "MAX_SEED"]

MAX_SEED = 2**32 - 1  # what every generator the project seeds (torch, numpy) accepts


class RandmixError(ValueError):
    """Bad input, a bad file or an impossible request, described in one line that names the fix."""


class MissingError(RandmixError, FileNotFoundError):
    """A file, folder or dataset that should be there is not."""


class ExistsError(RandmixError, FileExistsError):
    """Something would be overwritten that the user did not ask to overwrite."""


def choices_error(what: str, value: object, choices: Iterable[object], unknown: str = "unknown",
                  hint: str = "") -> RandmixError:
    """The one wording of "unknown X; valid choices: ..." used everywhere input is parsed."""
    return RandmixError(f"{unknown} {what} {value!r}; valid choices: {', '.join(map(str, choices))}{hint}")


def check_seed(name: str, value: int) -> int:
    """A seed outside 0..MAX_SEED would be refused deep inside torch or numpy with a traceback; refuse it here."""
    if not 0 <= value <= MAX_SEED:
        raise RandmixError(f"{name} must be in 0..{MAX_SEED}, got {value}")
    return value


def check_finite_fields(settings: Any) -> None:
    """Every float field of the dataclass ``settings`` is finite: NaN slips through every ``>``/``<`` check and inf
    through most, so one rule covers every float setting instead."""
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise RandmixError(f"{f.name} must be a finite number, got {value}; "
                               f"pass a finite --{f.name.replace('_', '-')}")
