"""``randmix eval``: RobustBench protocol, attacks, resume, sweep, sanity checks and bad input.

A tiny ConvMixer trained for a few seconds on ``synthetic`` data, a few test points and cheap attack
budgets (AutoAttack ``custom`` with few iterations); the full-budget path is compared with robustbench's
own ``benchmark()`` in test_robustbench_interop.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from pyautoattack.autopgd_base import APGDAttack
from torch import nn
from typer.testing import CliRunner

from randmix_bench import robustness
from randmix_bench.checkpoint import load_model, save_checkpoint
from randmix_bench.cli import app
from randmix_bench.data import load_split
from randmix_bench.files import sha256
from randmix_bench.models import create_model
from randmix_bench.result_files import read_result
from randmix_bench.results import pct
from randmix_bench.robustness import (
    CUSTOM_ATTACKS,
    EvalOptions,
    ProgressReporter,
    SanityOptions,
    evaluate,
    harness,
    make_attack_config,
    parse_attacks,
    pgd_attack,
    preparation,
    split_list,
)
from randmix_bench.tasks import accuracy
from randmix_bench.threat import ThreatModel, parse_eps_list
from randmix_bench.vocab import AAAttack, AAVersion, Attack, Norm

MODEL = "randmix_convmixer_tiny"  # conftest's train_tiny_checkpoint trains this one

runner = CliRunner()
N = 16  # test points
CHEAP = EvalOptions(attack=Attack.AUTOATTACK, version=AAVersion.CUSTOM, attacks=(AAAttack.APGD_CE,), n_iter=5,
                    n_examples=N, batch_size=4, device="cpu")
LINF_8 = ThreatModel.parse("Linf", "8/255")
LINF_01 = ThreatModel.parse("Linf", "0.1")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory,
            train_tiny_checkpoint: Callable[..., Path]) -> Path:
    run = tmp_path_factory.mktemp("runs") / "tiny-chans"
    train_tiny_checkpoint(run / "checkpoint.safetensors")
    return run


@pytest.fixture(scope="module")
def points() -> tuple[torch.Tensor, torch.Tensor]:
    split = load_split("synthetic", train=False).first(N)
    return split.images.float() / 255, split.labels


# ------------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(("text", "norm", "value"),
                         [("8/255", "Linf", 8 / 255), (" 0.5 ", "L2", 0.5), ("1", "Linf", 1.0), ("3", "L2", 3.0)])
def test_parse_eps_accepts_numbers_and_fractions(text: str, norm: str, value: float) -> None:
    assert math.isclose(ThreatModel.parse(norm, text).eps.value, value)


@pytest.mark.parametrize(("text", "norm", "message"), [
    ("0", "Linf", "eps must be > 0"), ("-1/255", "L2", "eps must be > 0"), ("2", "Linf", "at most 1"),
    ("abc", "Linf", "not a number"), ("1/0", "Linf", "not a number"), ("8/255", "L1", "unsupported norm 'L1'"),
])
def test_parse_eps_rejects_bad_values(text: str, norm: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ThreatModel.parse(norm, text)


def test_eps_list_is_sorted_and_rejects_repeats() -> None:
    assert [e.text for e in parse_eps_list("8/255, 1/255,2/255", Norm.LINF)] == ["1/255", "2/255", "8/255"]
    with pytest.raises(ValueError, match="repeats"):
        parse_eps_list("2/255,0.00784313725490196", Norm.LINF)


def test_attack_config_resolves_attacks_and_refuses_inconsistent_choices() -> None:
    from pyautoattack import AutoAttack

    standard = make_attack_config(threat=LINF_8)
    assert standard.attacks == AutoAttack(nn.Identity(), eps=8 / 255, version="standard").attacks_to_run
    assert make_attack_config(Attack.APGD_CE, threat=LINF_01).attacks == ["apgd-ce"]
    assert make_attack_config(Attack.NONE, threat=LINF_01).attacks == []
    custom = make_attack_config(threat=LINF_01, version=AAVersion.CUSTOM, attacks=(AAAttack.PGD, AAAttack.SQUARE),
                                n_iter=3)
    assert (custom.attacks, custom.n_iter) == (["pgd", "square"], 3)
    for kwargs, message in [
        (dict(version=AAVersion.CUSTOM), "needs --attacks"),
        (dict(version=AAVersion.CUSTOM, attacks=(AAAttack.SQUARE, AAAttack.SQUARE)), "repeats"),
        (dict(attacks=(AAAttack.APGD_CE,)), "goes with --attack autoattack --version custom"),
        (dict(n_iter=10), "use --version custom"),
        (dict(version=AAVersion.RAND), "unknown AutoAttack version"),
        (dict(batch_size=0), "batch size"),
    ]:
        with pytest.raises(ValueError, match=message):
            make_attack_config(threat=LINF_01, **kwargs)
    with pytest.raises(ValueError, match="unknown: cw"):
        parse_attacks("cw")
    assert "pgd" in CUSTOM_ATTACKS


def test_comma_lists_allow_spaces_after_commas() -> None:
    assert split_list("apgd-ce, square ,") == split_list(["apgd-ce ", " square"]) == ["apgd-ce", "square"]
    custom = make_attack_config(threat=LINF_01, version=AAVersion.CUSTOM, attacks=parse_attacks("apgd-ce, square"))
    assert custom.attacks == ["apgd-ce", "square"]
    with pytest.raises(ValueError, match="unknown: nope"):
        parse_attacks("apgd-ce, nope")


# ---------------------------------------------------------------------------------------- attacks


@pytest.mark.parametrize(("norm", "eps"), [(Norm.LINF, 0.1), (Norm.L2, 2.0)])
def test_pgd_stays_in_the_threat_model_breaks_points_and_is_seeded(run_dir: Path, points, norm: Norm,
                                                                   eps: float) -> None:
    model, _ = load_model(run_dir)
    model.requires_grad_(False)
    x, y = points
    adv = pgd_attack(model, x, y, norm=norm, eps=eps, steps=10, seed=0)
    delta = (adv - x).flatten(1)
    size = delta.abs().amax(1) if norm is Norm.LINF else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all() and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert (model(adv).argmax(1) == y).sum() < (model(x).argmax(1) == y).sum()
    assert torch.equal(adv, pgd_attack(model, x, y, norm=norm, eps=eps, steps=10, seed=0))


def test_harness_leaves_the_model_as_it_was(run_dir: Path, points) -> None:
    model, _ = load_model(run_dir)
    model.train()
    before = [p.requires_grad for p in model.parameters()]
    outcome = robustness.robust_accuracy(model, *points, make_attack_config(Attack.PGD, threat=LINF_01, n_iter=3,
                                                                            batch_size=8))
    assert model.training and [p.requires_grad for p in model.parameters()] == before
    assert outcome.robust_acc <= outcome.clean_acc and list(outcome.per_attack) == ["pgd"]


# ------------------------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_eval_writes_robustbench_json_curve_and_never_overwrites(run_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["eval", str(run_dir), "-d", "synthetic", "--version", "custom", "--attacks", "apgd-ce, square",
            "--n-iter", "5", "--n-queries", "30", "--n-examples", str(N), "--batch-size", "8",
            "--sweep", "24/255,2/255,8/255", "--device", "cpu"]  # no --eps: the sweep holds Linf's default, 8/255
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "apgd-ce" in result.output and "robust acc" in result.output  # the progress display

    path = Path("leaderboards/synthetic/Linf") / f"{run_dir.name}.json"
    entry = read_result(path)
    rb = entry.randmix
    model, _ = load_model(run_dir)
    clean = accuracy(model, load_split("synthetic", train=False).first(N))
    # RobustBench's model_info fields, in its formats
    assert (entry.name, entry.dataset, entry.eps, entry.architecture) == (run_dir.name, "synthetic", "8/255", MODEL)
    assert entry.clean_acc == pct(clean) and entry.autoattack_acc == pct(rb.robust_acc)
    assert entry.footnote and "custom" in entry.footnote and not entry.unreliable
    assert rb.autoattack_flags == [] and not rb.resumed and "AutoAttack flag" not in result.output
    # our block: protocol, attack, per-attack numbers, sweep, provenance
    assert (rb.n_examples, rb.threat_model, rb.mixing, rb.train_seed) == (N, "Linf", "chans", 0)
    assert rb.attack.attacks == ["apgd-ce", "square"] and math.isclose(rb.eps_value, 8 / 255)
    accs = list(rb.per_attack_robust_acc.values())
    assert accs == sorted(accs, reverse=True) and accs[-1] == rb.robust_acc <= rb.clean_acc == clean
    assert [p.eps for p in rb.sweep] == ["2/255", "8/255", "24/255"]
    curve = [p.robust_acc for p in rb.sweep]
    assert curve == sorted(curve, reverse=True) and rb.sweep[1].robust_acc == rb.robust_acc
    assert rb.sweep[-1].robust_acc < rb.clean_acc  # the largest eps breaks points
    assert rb.curve_png == path.with_suffix(".png").name
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkpoint = run_dir / "checkpoint.safetensors"
    assert rb.checkpoint.sha256 == sha256(checkpoint)
    folder = path.resolve().parent  # the checkpoint is named relative to it or to its nearest ancestor holding it
    assert any((base / rb.checkpoint.path).resolve() == checkpoint.resolve() for base in (folder, *folder.parents))
    assert rb.params_trainable > 0 and rb.params_frozen > 0 and rb.provenance.wall_time_s > 0
    assert set(rb.attack_time_s) >= {"eps=8/255 apgd-ce", "eps=2/255 square"}
    assert not path.with_suffix(".eval-state").exists()

    before = path.read_bytes()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output and path.read_bytes() == before
    assert runner.invoke(app, args + ["--force"]).exit_code == 0


@pytest.mark.slow
def test_no_attack_and_l2_pgd_entries_say_what_they_measured(run_dir: Path, tmp_path: Path) -> None:
    clean = evaluate(run_dir, "synthetic", EvalOptions(attack=Attack.NONE, out=tmp_path / "none.json", n_examples=N,
                                                       device="cpu")).result
    assert clean.autoattack_acc == clean.clean_acc and "No attack" in (clean.footnote or "")
    l2_options = EvalOptions(attack=Attack.PGD, threat=ThreatModel.parse("L2", "2"), n_iter=5, n_examples=N,
                             batch_size=8, device="cpu", out=tmp_path / "l2.json")
    l2 = evaluate(run_dir, "synthetic", l2_options).result
    assert (l2.eps, l2.randmix.threat_model, l2.randmix.attack.attacks) == ("2", "L2", ["pgd"])
    assert float(l2.autoattack_acc) < float(l2.clean_acc) and "pgd" in (l2.footnote or "")


@pytest.mark.parametrize(("norm", "eps_text", "eps_value"), [("Linf", "8/255", 8 / 255), ("L2", "0.5", 0.5)])
def test_eps_defaults_to_robustbench_eps_for_the_norm(run_dir: Path, tmp_path: Path, norm: str, eps_text: str,
                                                      eps_value: float) -> None:
    """A Python caller asking for L2 without an eps gets RobustBench's L2 eps (0.5), not the Linf 8/255."""
    result = evaluate(run_dir, "synthetic", EvalOptions(attack=Attack.NONE, threat=ThreatModel.parse(norm),
                                                        out=tmp_path / "x.json", n_examples=N, device="cpu")).result
    assert (result.eps, result.randmix.threat_model) == (eps_text, norm)
    assert result.randmix.eps_value == result.randmix.attack.eps == eps_value


@pytest.mark.slow
def test_killed_evaluation_resumes_and_ends_with_the_same_numbers(
        run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        interrupt_after: Callable[[int], ProgressReporter]) -> None:
    settings = replace(CHEAP, threat=LINF_8, attacks=(AAAttack.APGD_CE, AAAttack.PGD))
    reference = evaluate(run_dir, "synthetic", replace(settings, out=tmp_path / "reference.json")).result.randmix
    assert 0 < reference.robust_acc < reference.clean_acc  # some batches break points, so the record matters

    out = tmp_path / "resumed.json"
    settings = replace(settings, out=out)
    with pytest.raises(KeyboardInterrupt):
        evaluate(run_dir, "synthetic", settings, progress=interrupt_after(2))
    state = out.with_suffix(".eval-state")
    assert state.is_file() and not out.exists()
    with pytest.raises(ValueError, match="other settings"):
        evaluate(run_dir, "synthetic", replace(settings, threat=ThreatModel.parse("Linf", "4/255")))

    calls = []
    original = APGDAttack.perturb
    monkeypatch.setattr(APGDAttack, "perturb", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    resumed = evaluate(run_dir, "synthetic", settings)
    assert resumed.resumed and not state.exists()
    batches = math.ceil(reference.clean_acc * N / CHEAP.batch_size)
    assert len(calls) == batches - 2  # the two recorded batches were not attacked again
    rb = resumed.result.randmix
    assert (rb.clean_acc, rb.robust_acc, rb.per_attack_robust_acc) == (reference.clean_acc, reference.robust_acc,
                                                                       reference.per_attack_robust_acc)


class Tick:
    """A clock for ``robustness.harness.time`` that advances one second per reading: every attacked batch
    (timed by two readings) then takes exactly one second."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


@pytest.mark.slow
def test_resumed_result_says_so_and_adds_up_the_attack_times_of_its_parts(
        run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        interrupt_after: Callable[[int], ProgressReporter]) -> None:
    monkeypatch.setattr(harness, "time", Tick())
    settings = replace(CHEAP, threat=LINF_8, attacks=parse_attacks("apgd-ce, pgd"))
    reference = evaluate(run_dir, "synthetic", replace(settings, out=tmp_path / "reference.json")).result.randmix
    out = tmp_path / "resumed.json"
    settings = replace(settings, out=out)
    with pytest.raises(KeyboardInterrupt):
        evaluate(run_dir, "synthetic", settings, progress=interrupt_after(3))
    saved = json.loads(out.with_suffix(".eval-state").read_text())["stages"]["eps=8/255"]
    assert saved["apgd-ce"]["seconds"] == 3.0  # three batches attacked before the kill, one second each
    rb = evaluate(run_dir, "synthetic", settings).result.randmix
    assert rb.resumed and not reference.resumed and json.loads(out.read_text())["randmix"]["resumed"] is True
    batches = math.ceil(reference.clean_acc * N / CHEAP.batch_size)
    assert rb.attack_time_s == reference.attack_time_s and rb.attack_time_s["eps=8/255 apgd-ce"] == batches


@pytest.fixture()
def partial(run_dir: Path, tmp_path: Path,
            interrupt_after: Callable[[int], ProgressReporter]) -> tuple[EvalOptions, Path]:
    """Settings and the state file of an evaluation killed after one batch."""
    settings = replace(CHEAP, threat=LINF_8, out=tmp_path / "x.json")
    with pytest.raises(KeyboardInterrupt):
        evaluate(run_dir, "synthetic", settings, progress=interrupt_after(1))
    return settings, tmp_path / "x.eval-state"


@pytest.mark.slow
@pytest.mark.parametrize(("tamper", "message"), [
    (lambda d: d["stages"]["eps=8/255"]["apgd-ce"]["done"].update({"0": []}), "was edited or damaged"),
    (lambda d: d.update(clean=d["clean"] + [N]), f"clean predictions name points outside the {N} evaluated"),
    (lambda d: d["stages"]["eps=8/255"]["apgd-ce"]["done"].update({"99": []}),
     "records batches or points outside its plan"),
    (lambda d: d["fingerprint"].update(checkpoint_sha256="0" * 64), "of another checkpoint (sha256 000000000000"),
    (lambda d: d["fingerprint"].update(n_examples=N + 1), "other settings (n_examples differ)"),
    (lambda d: d["stages"]["eps=8/255"]["apgd-ce"]["done"].update({"0": []})
     or d.update(checksum=hashlib.sha256(json.dumps({k: v for k, v in d.items() if k != "checksum"}, sort_keys=True,
                                                     separators=(",", ":")).encode()).hexdigest()),
     "was edited or damaged"),
    (lambda d: d.update(clean=d["clean"][1:]), "its clean predictions are not this model's"),
], ids=["edited", "clean-past-the-data", "batch-past-the-plan", "other-checkpoint", "other-settings",
        "edited-and-re-hashed", "clean-edited-and-signed"])
def test_tampered_state_file_is_refused_and_force_discards_it(run_dir: Path, partial, tamper, message: str) -> None:
    """A state edited by hand, even re-hashed with sha256 as anyone could, carries no valid signature (an HMAC under
    this user's key); one signed with the key (its owner forging) is still caught by the content checks and by the
    clean predictions the model re-derives."""
    settings, state = partial
    data = json.loads(state.read_text())
    tamper(data)
    if "edited" not in message:  # a forger who holds the key and signs is still caught by the content checks
        data["checksum"] = robustness.record_checksum(data, robustness.state_key())
    state.write_text(json.dumps(data))
    with pytest.raises(robustness.StateError, match=re.escape(message)) as refused:
        evaluate(run_dir, "synthetic", settings)
    assert str(state) in str(refused.value) and "pass --force" in str(refused.value)
    assert not settings.out.exists()
    output = evaluate(run_dir, "synthetic", settings, force=True)
    assert not output.resumed and not state.exists() and output.path.is_file()


def test_state_file_that_is_not_json_is_refused(run_dir: Path, partial) -> None:
    settings, state = partial
    state.write_text("{not json")
    with pytest.raises(robustness.StateError, match="not JSON.*delete it to start over"):
        evaluate(run_dir, "synthetic", settings)


def test_a_second_evaluation_of_the_same_result_is_refused_at_once(run_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from randmix_bench.files import BusyError, exclusive

    monkeypatch.setattr(APGDAttack, "perturb",
                        lambda *a, **k: pytest.fail("attacked while another process holds the result"))
    out = tmp_path / "x.json"
    with exclusive(out, "a running evaluation"), pytest.raises(BusyError, match="another randmix process is writing"):
        evaluate(run_dir, "synthetic", replace(CHEAP, threat=LINF_8, out=out))
    assert not out.exists() and not out.with_suffix(".eval-state").exists()


# ------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_checkpoints(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    data = (run_dir / "checkpoint.safetensors").read_bytes()
    (folder / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    model, meta = load_model(run_dir)
    save_checkpoint(folder / "mismatch.safetensors", model, "randmix_resnet_tiny", meta["model_kwargs"])
    kwargs = dict(meta["model_kwargs"], num_classes=5)
    save_checkpoint(folder / "five-classes.safetensors", create_model(MODEL, **kwargs), MODEL, kwargs)
    return {p.stem: p for p in folder.iterdir()} | {"nonexistent": folder / "nonexistent.safetensors"}


@pytest.mark.parametrize(("case", "message"), [
    (["--eps", "0"], "eps must be > 0"),
    (["--eps", "1.5"], "a Linf eps must be at most 1"),
    (["--norm", "L1"], "unsupported norm 'L1'"),
    (["--n-examples", "TEST_SIZE+1"], "is larger than the synthetic test set"),
    (["CHECKPOINT", "truncated"], "corrupt or truncated"),
    (["CHECKPOINT", "mismatch"], "does not match"),
    (["CHECKPOINT", "five-classes"], "predicts 5 classes but synthetic has 10"),
    (["CHECKPOINT", "nonexistent"], "no checkpoint at"),
    (["--attack", "cw"], "unknown attack 'cw'"),
])
def test_bad_input_is_a_one_line_error_and_writes_nothing(run_dir: Path, bad_checkpoints: dict[str, Path],
                                                           tmp_path: Path, case: list[str], message: str) -> None:
    checkpoint = str(bad_checkpoints[case[1]]) if case[0] == "CHECKPOINT" else str(run_dir)
    too_many = str(len(load_split("synthetic", False)) + 1)
    extra = [] if case[0] == "CHECKPOINT" else [a.replace("TEST_SIZE+1", too_many) for a in case]
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", checkpoint, "-d", "synthetic", "--out", str(out / "x.json"),
                                 "--n-examples", "8", "--attack", "pgd", "--device", "cpu", *extra])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""  # not even the empty line an unused progress display once left
    assert not out.exists()


# ------------------------------------------------------------------------------------------ sanity


class QuantizedInput(nn.Module):
    """A classic gradient-masking "defense": rounding the input to ``levels`` steps has zero gradient everywhere."""

    def __init__(self, inner: nn.Module, levels: int = 255) -> None:
        super().__init__()
        self.inner, self.levels = inner, levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * self.levels) / self.levels)


@pytest.mark.slow
def test_masked_gradients_are_flagged_without_sanity(run_dir: Path, tmp_path: Path, points,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain ``randmix eval`` settings (APGD-CE alone, no --sanity) on a model behind ``round(4x)/4``:
    AutoAttack's zero-gradient flag is recorded, printed, and marks the entry unreliable."""
    model, _ = load_model(run_dir)
    config = make_attack_config(Attack.APGD_CE, threat=LINF_01, n_iter=5, batch_size=N)
    outcome = robustness.robust_accuracy(QuantizedInput(model, 4), *points, config)
    assert any("zero gradient" in flag for flag in outcome.flags)

    monkeypatch.setattr(preparation, "load_model", lambda path, map_location="cpu": (
        QuantizedInput(load_model(path)[0], 4).eval(), load_model(path)[1]))
    out = tmp_path / "masked.json"
    result = runner.invoke(app, ["eval", str(run_dir), "-d", "synthetic", "--version", "custom", "--attacks", "apgd-ce",
                                 "--n-iter", "5", "--n-examples", str(N), "--batch-size", str(N), "--device", "cpu",
                                 "--out", str(out)], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "AutoAttack flag: there are" in result.stderr and "may be an overestimate" in result.stderr
    entry = read_result(out)
    assert entry.unreliable and entry.randmix.sanity is None
    assert [f for f in entry.randmix.autoattack_flags if "zero gradient" in f]


def test_misclassified_points_do_not_raise_the_zero_gradient_flag(run_dir: Path, points) -> None:
    """AutoAttack checks gradients only at the points it attacks: at a misclassified point whose label ranks
    third, DLR is the constant -1, so checking every point flagged honest models as masking gradients."""
    model, _ = load_model(run_dir)
    images = points[0]
    with torch.no_grad():
        ranking = model(images).argsort(1, descending=True)
    labels = torch.where(torch.arange(len(images)) % 2 == 0, ranking[:, 0], ranking[:, 2])  # odd points: label third
    config = make_attack_config(Attack.APGD_CE, threat=LINF_01, n_iter=5, batch_size=N)
    outcome = robustness.robust_accuracy(model, images, labels, config)
    assert outcome.clean_acc == 0.5
    assert not [flag for flag in outcome.flags if "zero gradient" in flag]


def test_a_model_is_refused_on_data_with_other_channels(run_dir: Path, tmp_path: Path) -> None:
    """A 3-channel model would run on 1-channel Fashion-MNIST (its Normalize broadcasts): refused first."""
    with pytest.raises(ValueError, match="takes 3-channel images but fashion-mnist has 1-channel images"):
        evaluate(run_dir, "fashion-mnist",
                 EvalOptions(attack=Attack.NONE, n_examples=4, device="cpu", out=tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_sanity_passes_for_a_trained_model(run_dir: Path, tmp_path: Path) -> None:
    options = SanityOptions(square_queries=50)
    settings = replace(CHEAP, out=tmp_path / "x.json", threat=LINF_8, sanity=options)
    report = evaluate(run_dir, "synthetic", settings).result
    sanity = report.randmix.sanity
    assert sanity is not None and sanity.passed and not report.unreliable, sanity
    assert sanity.large_eps_robust_acc <= options.max_large_eps_acc
    assert sanity.whitebox_robust_acc == report.randmix.robust_acc


@pytest.mark.slow
def test_sanity_fails_loudly_on_masked_gradients(run_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def load_masked(path: Path, map_location: str = "cpu") -> tuple[nn.Module, dict]:
        model, meta = load_model(path, map_location)
        return QuantizedInput(model).eval(), meta

    monkeypatch.setattr(preparation, "load_model", load_masked)
    out = tmp_path / "masked.json"
    result = runner.invoke(app, ["eval", str(run_dir), "-d", "synthetic", "--version", "custom",
                                 "--attacks", "apgd-ce,apgd-t", "--n-iter", "5", "--n-queries", "100", "--eps", "0.1",
                                 "--n-examples", str(N), "--batch-size", "16", "--sanity", "--device", "cpu",
                                 "--out", str(out)], terminal_width=200)
    assert result.exit_code == 3, result.output
    assert "sanity checks FAILED" in result.output
    entry = read_result(out)
    sanity = entry.randmix.sanity
    assert entry.unreliable and sanity is not None and not sanity.passed
    assert sanity.large_eps_robust_acc > SanityOptions().max_large_eps_acc  # gradients lead nowhere, even at eps 0.5
    assert sanity.square_robust_acc is not None and sanity.whitebox_robust_acc is not None
    assert sanity.square_robust_acc < sanity.whitebox_robust_acc  # the black-box attack is stronger
    assert any("zero gradient" in flag for flag in sanity.autoattack_flags)  # AutoAttack's own flag
    assert json.loads(out.read_text())["unreliable"] is True


@pytest.mark.slow
def test_a_model_no_attack_breaks_is_evaluated_not_crashed(train_tiny_checkpoint, tmp_path: Path) -> None:
    """Robust = clean after the first attack (what a gradient mask or input rounding gives): accuracies are exact
    counts, so the result validates, and the per-point outcomes say which points stayed robust."""
    from randmix_bench.robustness import EvalOptions, evaluate

    ckpt = train_tiny_checkpoint(tmp_path / "m.safetensors")
    options = EvalOptions(attack=Attack.APGD_CE, threat=ThreatModel.parse("Linf", "1e-9"), n_examples=37,
                          batch_size=37, device="cpu", out=tmp_path / "r.json")
    rb = evaluate(ckpt, "synthetic", options).result.randmix
    assert rb.robust_acc == rb.clean_acc == rb.per_attack_robust_acc["apgd-ce"]
    assert rb.points is not None and rb.points.robust == rb.points.clean


@pytest.mark.slow
def test_per_point_outcomes_must_count_the_recorded_accuracies(train_tiny_checkpoint, edit_result,
                                                              tmp_path: Path) -> None:
    from randmix_bench.result_files import ResultError
    from randmix_bench.robustness import EvalOptions, evaluate

    ckpt = train_tiny_checkpoint(tmp_path / "m.safetensors")
    out = tmp_path / "r.json"
    options = EvalOptions(attack=Attack.NONE, n_examples=20, device="cpu", out=out)
    rb = evaluate(ckpt, "synthetic", options).result.randmix
    assert rb.points is not None
    clean = rb.points.clean
    wrong = [1 - clean[0], *clean[1:]]
    for change, message in (({"randmix.points.clean": wrong}, "clean_acc"),
                            ({"randmix.points.robust": [1] * 20, "randmix.points.clean": [1] * 19 + [0]}, "robust")):
        bad = tmp_path / f"bad-{message}.json"
        bad.write_text(out.read_text())
        edit_result(bad, change)
        with pytest.raises(ResultError, match=message):
            read_result(bad)


@pytest.mark.slow
@pytest.mark.parametrize("sanity", [False, True], ids=["without-sanity", "with-sanity"])
def test_a_masked_model_is_evaluated_through_the_cli_flagged_and_not_ranked(
        train_tiny_checkpoint, tmp_path: Path, sanity: bool) -> None:
    """A model whose first attack breaks no point (robust = clean) is evaluated by `randmix eval`, flagged (so
    marked unreliable) with or without --sanity (which then fails, exit 3), and listed unranked by the leaderboard."""
    from randmix_bench import rankings
    from randmix_bench.entries import load_entries

    folder = tmp_path / "leaderboards" / "synthetic" / "Linf"
    ckpt = train_tiny_checkpoint(folder / "m.safetensors")
    result = runner.invoke(app, ["eval", str(ckpt), "-d", "synthetic", "--attack", "apgd-ce", "--eps", "1e-9",
                                 "--n-examples", "37", "--batch-size", "37", "--device", "cpu", "--out",
                                 str(folder / "m.json"), "--n-queries", "50", *(["--sanity"] if sanity else [])],
                           terminal_width=300)
    assert result.exit_code == (3 if sanity else 0), result.output
    entry = read_result(folder / "m.json")
    rb = entry.randmix
    assert rb.robust_acc == rb.clean_acc > 0 and entry.unreliable
    assert any("broke none of the" in flag for flag in rb.autoattack_flags)
    assert (rb.sanity is not None and not rb.sanity.passed) if sanity else rb.sanity is None
    markdown = rankings.render_leaderboard(load_entries(tmp_path / "leaderboards"), tmp_path)
    assert "No ranked entries" in markdown and rankings.NOT_RANKED in markdown


@pytest.mark.slow
def test_a_transfer_attack_judges_examples_made_on_another_model(train_tiny_checkpoint, tmp_path: Path) -> None:
    """The masking control: APGD-CE examples made on the `full` model, judged on the `chans` one; the source is
    recorded by its weights; refused without a source, with the model itself as source, and with --sanity."""
    from randmix_bench.checkpoint import digests
    from randmix_bench.errors import RandmixError
    from randmix_bench.masking import controls
    from randmix_bench.robustness import EvalOptions, SanityOptions, evaluate

    source = train_tiny_checkpoint(tmp_path / "full.safetensors", mixing="full")
    target = train_tiny_checkpoint(tmp_path / "chans.safetensors", mixing="chans")
    base = EvalOptions(threat=LINF_8, n_examples=24, batch_size=24, device="cpu")
    transfer = evaluate(target, "synthetic", replace(base, attack=Attack.TRANSFER, transfer_from=source,
                                                      out=tmp_path / "t.json")).result
    rb = transfer.randmix
    assert rb.attack.attack == "transfer" and rb.attack.attacks == ["apgd-ce"] and rb.sanity is None
    assert rb.attack.source is not None and rb.attack.source.weights_sha256 == digests(source)[1]
    assert rb.points is not None and "upper bound" in (transfer.footnote or "")
    whitebox = evaluate(target, "synthetic", replace(base, attack=Attack.APGD_CE, out=tmp_path / "w.json")).result
    [check] = controls([whitebox, transfer])
    assert (check.entry, check.kind, check.n) == (whitebox.name, "transfer", 24)
    assert check.whitebox_robust == sum(whitebox.randmix.points.robust)  # type: ignore[union-attr]
    for options, message in ((replace(base, attack=Attack.TRANSFER), "go together"),
                             (replace(base, transfer_from=source), "go together"),
                             (replace(base, attack=Attack.TRANSFER, transfer_from=target), "itself"),
                             (replace(base, attack=Attack.TRANSFER, transfer_from=source, sanity=SanityOptions()),
                              "--sanity")):
        with pytest.raises(RandmixError, match=message):
            evaluate(target, "synthetic", replace(options, out=tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_an_earlier_result_gets_its_per_point_outcomes_by_a_rerun_of_its_main_eps(
        train_tiny_checkpoint, edit_result, tmp_path: Path) -> None:
    """Results written before per-point outcomes were recorded get them from a re-attack of the main eps alone,
    which must reproduce their counts; the sweep and sanity report are kept. A count that does not reproduce (an
    edited number) writes nothing."""
    from randmix_bench.errors import RandmixError
    from randmix_bench.robustness import EvalOptions, SanityOptions, add_points, evaluate

    ckpt = train_tiny_checkpoint(tmp_path / "m.safetensors")
    out = tmp_path / "r.json"
    options = EvalOptions(attack=Attack.APGD_CE, threat=LINF_8, n_examples=24, batch_size=24, device="cpu", out=out,
                          sweep=parse_eps_list("4/255,8/255", Norm.LINF), sanity=SanityOptions(square_queries=10))
    first = evaluate(ckpt, "synthetic", options).result
    edit_result(out, {"randmix.points": None, "randmix.full_test_clean": None})
    again = add_points(ckpt, "synthetic", options).result.randmix
    assert again.points == first.randmix.points and again.sweep == first.randmix.sweep
    assert again.sanity == first.randmix.sanity and again.robust_acc == first.randmix.robust_acc
    edit_result(out, {"randmix.points": None, "randmix.full_test_clean": None, "randmix.robust_acc": 1.0,
                      "randmix.clean_acc": 1.0, "autoattack_acc": "100.00", "clean_acc": "100.00",
                      "randmix.per_attack_robust_acc": {"apgd-ce": 1.0}, "randmix.sweep": []})
    before = out.read_text()
    with pytest.raises(RandmixError, match="not the recorded"):
        add_points(ckpt, "synthetic", options)
    assert out.read_text() == before


@pytest.mark.slow
def test_the_attacked_points_clean_outcomes_are_measured_once(
        train_tiny_checkpoint, monkeypatch, tmp_path: Path) -> None:
    """On a GPU, a near-tie point can be classified differently by two passes at different batch sizes. The
    whole-test clean outcomes take the attacked points' outcomes from the attack's own clean pass, so the
    two records of those points can never disagree (the result validates); the rest of the test set is
    predicted separately."""
    from randmix_bench.robustness import evaluation

    ckpt = train_tiny_checkpoint(tmp_path / "m.safetensors")
    real = evaluation.predict

    def rounding_differently(model, images, batch_size, device):  # noqa: ANN001, ANN202
        preds = real(model, images, batch_size, device)
        preds[0] = (preds[0] + 1) % 10  # another pass flips the first point it sees
        return preds

    monkeypatch.setattr(evaluation, "predict", rounding_differently)
    options = EvalOptions(attack=Attack.APGD_CE, threat=LINF_8, n_examples=24, batch_size=24, device="cpu",
                          out=tmp_path / "r.json")
    rb = evaluate(ckpt, "synthetic", options).result.randmix
    assert rb.points is not None and rb.full_test_clean is not None
    assert rb.full_test_clean[:24] == rb.points.clean
    test = load_split("synthetic", train=False)
    unflipped = (real(load_model(ckpt)[0], test.images[24:], 64, torch.device("cpu")) == test.labels[24:]).int()
    assert rb.full_test_clean[24] != unflipped[0] and rb.full_test_clean[25:] == unflipped[1:].tolist()


@pytest.mark.slow
def test_a_sweep_through_the_headline_eps_replays_its_first_attacks(
        train_tiny_checkpoint, monkeypatch, tmp_path: Path) -> None:
    """The medium tier's protocol: a headline of APGD-CE + APGD-T and an APGD-CE sweep through the same eps. The
    headline already ran APGD-CE on every clean point there, and the sweep point shares its stage in the record,
    so it is replayed: no point is attacked twice with one attack at one eps (the sweep costs its other eps only),
    and the sweep point is what the smaller eps and the headline's APGD-CE left."""
    from randmix_bench.robustness.harness import Harness

    ckpt = train_tiny_checkpoint(tmp_path / "m.safetensors")
    attacked: list[tuple[float, str, int]] = []
    real = Harness._attack_batch

    def spy(self, adversary, attack, idx, config):  # noqa: ANN001, ANN202
        attacked.append((config.eps, attack, len(idx)))
        return real(self, adversary, attack, idx, config)

    monkeypatch.setattr(Harness, "_attack_batch", spy)
    options = EvalOptions(attack=Attack.AUTOATTACK, version=AAVersion.CUSTOM, attacks=parse_attacks("apgd-ce,apgd-t"),
                          threat=ThreatModel.parse("Linf", "4/255"),
                          sweep=parse_eps_list("2/255,4/255,8/255", Norm.LINF), sweep_attacks=parse_attacks("apgd-ce"),
                          n_examples=24, batch_size=24, n_iter=5, device="cpu", out=tmp_path / "r.json")
    rb = evaluate(ckpt, "synthetic", options).result.randmix
    at_headline = [(a, n) for eps, a, n in attacked if math.isclose(eps, 4 / 255)]
    assert [a for a, _ in at_headline].count("apgd-ce") == 1  # no attack twice at one eps
    assert at_headline[0] == ("apgd-ce", round(rb.clean_acc * 24))  # on every clean point
    assert {round(eps * 255) for eps, a, _ in attacked if a == "apgd-ce"} == {2, 4, 8}
    (point,) = [p for p in rb.sweep if p.eps == "4/255"]
    assert list(point.attacks or []) == ["apgd-ce"] and point.robust_acc >= rb.robust_acc
    assert point.robust_acc <= rb.per_attack_robust_acc["apgd-ce"]  # what 2/255 and the headline's APGD-CE left
