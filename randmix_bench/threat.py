"""The threat model as typed values: an :class:`Eps` (its exact fraction and its text) and a :class:`ThreatModel`
(a norm and an eps), parsed once where text arrives (the command line, a plan, a result file).

An eps is written as ``"8/255"``, ``"0.5"`` or a float. The text is NFKC-normalised (a full-width ``８/255``
becomes ``8/255``) and must then be plain ASCII decimal: Python's ``float`` would accept other scripts' digits and
``_`` separators, and a result file would store them verbatim. Result files keep eps twice, as written
(RobustBench's ``eps``) and as a number (``eps_value``); both are read back through :meth:`Eps.parse`, so an
edited text that no longer says the number is caught.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from randmix_bench.errors import RandmixError
from randmix_bench.vocab import Norm, split_list

__all__ = ["Eps", "ThreatModel", "DEFAULT_EPS", "MAX_SWEEP", "parse_eps_list", "same_eps"]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", re.ASCII)  # \d: 0-9 only

MAX_SWEEP = 32
"""The most eps values a sweep takes: a curve needs a handful, and each value is a whole attack stage."""


@dataclass(frozen=True)
class Eps:
    """A positive, finite eps: ``text`` as written (canonical: NFKC, no surrounding spaces), the exact
    ``fraction`` it says, and ``value``, the float the attack runs at and the result records. Two eps are equal
    when their fractions are (``8/255`` and ``16/510``); :func:`same_eps` compares recorded floats."""

    text: str = field(compare=False)
    fraction: Fraction
    value: float = field(compare=False)

    @classmethod
    def parse(cls, text: str | float) -> Eps:
        """``"8/255"``, ``"0.5"`` or a float -> an eps; refuses an empty or non-decimal text and eps <= 0."""
        s = unicodedata.normalize("NFKC", str(text)).strip()
        num, slash, den = s.partition("/")
        if not _NUMBER.fullmatch(num) or (slash and not _NUMBER.fullmatch(den)):
            raise RandmixError(f"eps {s!r} is not a number or a fraction like 8/255")
        try:  # the float first: a finite one bounds the exponent before Fraction expands it
            value = float(num) / float(den) if slash else float(num)
        except ZeroDivisionError:
            raise RandmixError(f"eps {s!r} is not a number (it divides by zero)") from None
        if not math.isfinite(value) or value <= 0:
            raise RandmixError(f"eps must be > 0, got {s}")
        return cls(s, Fraction(num) / Fraction(den) if slash else Fraction(num), value)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ThreatModel:
    """A norm and an eps, checked together: a Linf eps above 1 would allow any input in [0, 1]."""

    norm: Norm
    eps: Eps

    def __post_init__(self) -> None:
        if self.norm is Norm.LINF and self.eps.value > 1:
            raise RandmixError(f"a Linf eps must be at most 1 (inputs are in [0, 1]), got {self.eps}")

    @classmethod
    def parse(cls, norm: str, eps: str | float | None = None) -> ThreatModel:
        """The threat model ``norm`` and ``eps`` name; ``eps=None`` is RobustBench's eps for the norm
        (:data:`DEFAULT_EPS`), so that asking for L2 without an eps never runs at the Linf radius."""
        parsed = Norm.parse(norm)
        return cls(parsed, DEFAULT_EPS[parsed] if eps is None else Eps.parse(eps))

    def at(self, eps: Eps) -> ThreatModel:
        """The same norm at another eps (a sweep point)."""
        return ThreatModel(self.norm, eps)

    def __str__(self) -> str:
        return f"{self.norm} {self.eps}"


DEFAULT_EPS = {Norm.LINF: Eps.parse("8/255"), Norm.L2: Eps.parse("0.5")}
"""RobustBench's eps per threat model."""


def parse_eps_list(text: str | Sequence[str], norm: Norm) -> tuple[Eps, ...]:
    """``"1/255,2/255"`` -> the eps of a sweep under ``norm``, by value; more than :data:`MAX_SWEEP` values or one
    value twice (as the attack runs it: ``2/255`` and ``0.00784313725490196``) is an error."""
    items = split_list(text)
    if len(items) > MAX_SWEEP:
        raise RandmixError(f"the eps list has {len(items)} values; a sweep takes at most {MAX_SWEEP}")
    given = [ThreatModel(norm, Eps.parse(t)).eps for t in items]
    if len({e.value for e in given}) != len(given):
        raise RandmixError(f"the eps list {', '.join(e.text for e in given)} repeats a value")
    return tuple(sorted(given, key=lambda e: e.value))


def same_eps(a: float, b: float) -> bool:
    """Whether two recorded eps values are the same radius (up to float rounding in how they were written)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
