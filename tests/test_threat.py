"""The typed values text is parsed into once, at the boundary: ``Eps``, ``ThreatModel``, the sweep list, the
attack names, and the vocabulary fields of a training config. Hostile input is refused in one line."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from randmix_bench import threat
from randmix_bench.errors import RandmixError
from randmix_bench.recipes import TrainConfig, get_recipe
from randmix_bench.robustness import parse_attacks, parse_threat
from randmix_bench.threat import DEFAULT_EPS, MAX_SWEEP, Eps, ThreatModel, parse_eps_list
from randmix_bench.vocab import AAAttack, Mixing, Norm, Optimizer


@pytest.mark.parametrize(("given", "text", "fraction", "value"), [
    ("8/255", "8/255", Fraction(8, 255), 8 / 255),
    ("  0.015 ", "0.015", Fraction(3, 200), 0.015),
    ("８/２５５", "8/255", Fraction(8, 255), 8 / 255),  # full-width digits: NFKC, then stored as ASCII
    (0.5, "0.5", Fraction(1, 2), 0.5),
    ("1e-3", "1e-3", Fraction(1, 1000), 1e-3),
    (".5/2", ".5/2", Fraction(1, 4), 0.25),
    ("16/510", "16/510", Fraction(8, 255), 16 / 510),
])
def test_eps_keeps_its_text_its_exact_fraction_and_the_float_the_attack_runs_at(
        given: str | float, text: str, fraction: Fraction, value: float) -> None:
    eps = Eps.parse(given)
    assert (eps.text, eps.fraction, eps.value, str(eps), f"{eps}") == (text, fraction, value, text, text)


def test_eps_equality_is_the_exact_fraction_and_a_round_trip_through_its_text_is_the_identity() -> None:
    a, b = Eps.parse("8/255"), Eps.parse("16/510")
    assert a == b and hash(a) == hash(b) and a.text != b.text  # one radius, each as written
    assert Eps.parse("0.03137254901960784") != a  # the float's decimal is not the fraction 8/255
    for eps in (a, b, Eps.parse("0.015"), Eps.parse(" ８/255")):
        again = Eps.parse(eps.text)
        assert (again, again.text, again.value) == (eps, eps.text, eps.value)


@pytest.mark.parametrize(("given", "message"), [
    ("", "eps '' is not a number"), ("   ", "eps '' is not a number"), ("nan", "not a number"),
    (float("nan"), "not a number"), ("inf", "not a number"), (float("inf"), "not a number"),
    ("-inf", "not a number"), ("0", "eps must be > 0"), ("0/1", "eps must be > 0"), ("-1/255", "eps must be > 0"),
    (-0.5, "eps must be > 0"), ("1e-400", "eps must be > 0"), ("1e999", "eps must be > 0"),
    ("1/0", "divides by zero"), ("1e-400/1e-400", "divides by zero"), ("١/255", "not a number"),
    ("8_0/255", "not a number"), ("0x10", "not a number"), ("½", "not a number"), ("8/255/2", "not a number"),
    ("8 /255", "not a number"), ("8/", "not a number"), ("/255", "not a number"), ("1e99999999/1e99999999", "> 0"),
])
def test_hostile_eps_is_one_line_naming_it(given: str | float, message: str) -> None:
    with pytest.raises(RandmixError, match=message) as info:
        Eps.parse(given)
    assert "\n" not in str(info.value)


def test_a_huge_eps_text_is_refused_before_its_exact_fraction_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """The float is checked first, so a huge exponent or digit string is never expanded into a giant integer."""

    def never(*args: object) -> Fraction:
        raise AssertionError(f"Fraction{args} built for a refused eps")

    monkeypatch.setattr(threat, "Fraction", never)
    for text in ("1e999999999", "9" * 100_000, f"1/{'9' * 100_000}", "1e-999999999"):
        with pytest.raises(RandmixError):
            Eps.parse(text)


def test_threat_model_checks_norm_and_eps_together() -> None:
    assert ThreatModel.parse("Linf", "1").eps.value == 1.0  # the whole box, allowed
    assert ThreatModel.parse("L2", "3").eps.value == 3.0  # an L2 radius may exceed 1
    with pytest.raises(RandmixError, match="a Linf eps must be at most 1"):
        ThreatModel.parse("Linf", "2")
    with pytest.raises(RandmixError, match="a Linf eps must be at most 1"):
        ThreatModel(Norm.LINF, Eps.parse("256/255"))
    with pytest.raises(RandmixError, match="unsupported norm 'L1'"):
        ThreatModel.parse("L1", "0.5")
    with pytest.raises(RandmixError, match="unsupported norm 'linf'"):
        ThreatModel.parse("linf")  # names are case-sensitive, as RobustBench writes them
    assert ThreatModel.parse("L2") == ThreatModel(Norm.L2, DEFAULT_EPS[Norm.L2])  # RobustBench's eps per norm
    assert str(ThreatModel.parse("Linf")) == "Linf 8/255"
    assert ThreatModel.parse("Linf", "8/255").at(Eps.parse("2/255")) == ThreatModel.parse("Linf", "2/255")


def test_the_sweep_is_sorted_distinct_bounded_and_checked_under_its_norm() -> None:
    assert parse_eps_list("", Norm.LINF) == parse_eps_list(" , ", Norm.LINF) == ()
    assert [e.text for e in parse_eps_list(["4/255", "1/255, 0.02"], Norm.LINF)] == ["1/255", "4/255", "0.02"]
    with pytest.raises(RandmixError, match="repeats a value"):
        parse_eps_list("8/255,16/510", Norm.LINF)
    with pytest.raises(RandmixError, match=f"a sweep takes at most {MAX_SWEEP}"):
        parse_eps_list(",".join(f"{i}/1000" for i in range(1, MAX_SWEEP + 2)), Norm.LINF)
    with pytest.raises(RandmixError, match="a Linf eps must be at most 1"):
        parse_eps_list("0.5,2", Norm.LINF)
    assert [e.value for e in parse_eps_list("0.5,2", Norm.L2)] == [0.5, 2.0]


def test_the_headline_eps_defaults_to_the_norms_unless_a_sweep_leaves_it_ambiguous() -> None:
    assert parse_threat("L2", None) == (ThreatModel.parse("L2", "0.5"), ())
    threat, sweep = parse_threat("Linf", None, "2/255,8/255")
    assert threat == ThreatModel.parse("Linf", "8/255") and [e.text for e in sweep] == ["2/255", "8/255"]
    assert parse_threat("Linf", "2/255", "1/255")[0].eps.text == "2/255"  # an --eps outside the sweep is attacked too
    with pytest.raises(RandmixError, match="--sweep 1/255,2/255 does not hold Linf's default eps 8/255"):
        parse_threat("Linf", None, "2/255,1/255")


@pytest.mark.parametrize(("given", "message"), [
    ("apgd-ce, nope", "(unknown: nope)"), ("APGD-CE", "(unknown: APGD-CE)"), ("apgd_ce", "unknown: apgd_ce"),
    ("fgsm,cw", "(unknown: fgsm, cw)"),
])
def test_attack_names_are_parsed_once_with_every_unknown_one_named(given: str, message: str) -> None:
    with pytest.raises(RandmixError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_attacks(given)


def test_attack_names_become_members_in_order() -> None:
    assert parse_attacks(" apgd-ce,, square ") == (AAAttack.APGD_CE, AAAttack.SQUARE)
    assert parse_attacks("") == parse_attacks(()) == ()


def test_a_training_config_holds_members_parsed_where_text_arrives() -> None:
    """Recipes hold members; a stored record's text is parsed by ``from_dict``; text passed from Python is a bug,
    refused before it could compare unequal to a member somewhere inside."""
    cfg = get_recipe("quick").override(mixing=Mixing.CHANS_SMOOTH)
    assert cfg.mixing is Mixing.CHANS_SMOOTH and cfg.optimizer is Optimizer.ADAMW
    record = {**cfg.to_dict(), "mixing": "chans-smooth", "optimizer": "sgd"}  # as run.json gives it back
    again = TrainConfig.from_dict(record)
    assert again.mixing is Mixing.CHANS_SMOOTH and again.optimizer is Optimizer.SGD
    assert again.to_dict() == record  # and it writes the same text
    with pytest.raises(RandmixError, match="unknown mixing mode 'chan'"):
        TrainConfig.from_dict({**record, "mixing": "chan"})
    with pytest.raises(TypeError, match="TrainConfig.mixing must be a Mixing"):
        replace(cfg, mixing="chans").validate()
