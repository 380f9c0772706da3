"""The CLI skeleton through Typer's runner."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from randmix_bench import __version__
from randmix_bench.cli import app
from randmix_bench.mixing import count_parameters
from randmix_bench.models import create_model

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_models_lists_every_variant_with_counts() -> None:
    result = runner.invoke(app, ["models", "-m", "full", "-m", "chans", "-m", "space"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for mixing in ("full", "chans", "space"):
        trainable, frozen = count_parameters(create_model("randmix_convmixer_256_8", mixing=mixing))
        row = next(l for l in result.output.splitlines() if "randmix_convmixer_256_8" in l and f" {mixing} " in l)
        assert f"{trainable:,}" in row and f"{frozen:,}" in row


def test_unknown_mixing_is_a_one_line_error() -> None:
    result = runner.invoke(app, ["models", "-m", "chan"])
    assert result.exit_code == 2
    assert "unknown mixing mode 'chan'; valid choices: full, chans, space, chans-smooth" in result.output


def test_shuffle_train_is_train_with_the_same_options() -> None:
    """`randmix shuffle train` declares no option of its own: names, help, defaults and requiredness are train's."""
    group = typer.main.get_command(app)
    train, alias = group.commands["train"], group.commands["shuffle"].commands["train"]  # type: ignore[attr-defined]

    def options(command: typer.core.TyperCommand) -> list[tuple]:
        return [(p.name, p.opts, p.secondary_opts, p.help, p.required, p.default) for p in command.params]

    assert options(alias) == options(train)
    names = {o for p in train.params for o in p.opts}
    assert {"--recipe", "-r", "--loss", "--permutation-seed", "--label-smoothing", "--wd", "--resume"} <= names
