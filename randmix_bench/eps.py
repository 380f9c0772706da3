"""The one eps parser: ``"8/255"``, ``"0.5"`` or a float -> (its canonical text, its value).

Result files keep eps twice, as written (RobustBench's ``eps``) and as a number (``eps_value``); both are read
back through :func:`parse_eps`, so an edited string that no longer says the number is caught. The text is
NFKC-normalised first (a full-width ``８/255`` becomes ``8/255``) and must then be plain ASCII decimal: Python's
``float`` would accept other scripts' digits and ``_`` separators, and the file would store them verbatim.
"""

from __future__ import annotations

import math
import re
import unicodedata

from randmix_bench.errors import RandmixError
from randmix_bench.vocab import Norm

__all__ = ["eps_text", "parse_eps", "same_eps"]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", re.ASCII)  # \d: 0-9 only


def eps_text(text: str | float) -> str:
    """The canonical form of an eps as written: NFKC-normalised, without surrounding spaces."""
    return unicodedata.normalize("NFKC", str(text)).strip()


def parse_eps(text: str | float, norm: str) -> float:
    """``"8/255"``, ``"0.5"`` or a float -> eps; rejects an empty or non-decimal text, eps <= 0, a Linf eps > 1
    and unknown norms."""
    norm = Norm.parse(norm)
    s = eps_text(text)
    num, slash, den = s.partition("/")
    if not _NUMBER.fullmatch(num) or (slash and not _NUMBER.fullmatch(den)):
        raise RandmixError(f"eps {s!r} is not a number or a fraction like 8/255")
    try:
        value = float(num) / float(den) if slash else float(num)
    except ZeroDivisionError:
        raise RandmixError(f"eps {s!r} is not a number (it divides by zero)") from None
    if not math.isfinite(value) or value <= 0:
        raise RandmixError(f"eps must be > 0, got {s}")
    if norm == "Linf" and value > 1:
        raise RandmixError(f"a Linf eps must be at most 1 (inputs are in [0, 1]), got {s}")
    return value


def same_eps(a: float, b: float) -> bool:
    """Whether two eps values are the same radius (up to float rounding in how they were written)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
