"""The CLI skeleton through Typer's runner."""

from __future__ import annotations

import ast
import gc
import importlib
import inspect
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from typer.testing import CliRunner

import randmix_bench
from randmix_bench import __version__
from randmix_bench.cli import app
from randmix_bench.errors import RandmixError
from randmix_bench.freezing import count_parameters
from randmix_bench.models import create_model
from randmix_bench.quickstart import QuickstartConfig
from randmix_bench.robustness import EvalOptions
from randmix_bench.threads import available_cores
from randmix_bench.verify import VerifyOptions

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_models_lists_every_variant_with_counts() -> None:
    result = runner.invoke(app, ["models", "-m", "full", "-m", "chans", "-m", "space"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for mixing in ("full", "chans", "space"):
        trainable, frozen = count_parameters(create_model("randmix_convmixer_256_8", mixing=mixing))
        row = next(line for line in result.output.splitlines()
                   if "randmix_convmixer_256_8" in line and f" {mixing} " in line)
        assert f"{trainable:,}" in row and f"{frozen:,}" in row


def test_unknown_mixing_is_a_one_line_error() -> None:
    result = runner.invoke(app, ["models", "-m", "chan"])
    assert result.exit_code == 2
    assert "unknown mixing mode 'chan'; valid choices: full, chans, space, chans-smooth" in result.output


def called_with(monkeypatch: pytest.MonkeyPatch, target: str) -> tuple[dict[str, Any], inspect.Signature]:
    """Replace the library function ``target`` (``module.name``) with one that records the arguments a command
    calls it with, then stops the command; returns them (once called) and the function's signature."""
    module, name = target.rsplit(".", 1)
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    arguments: dict[str, Any] = {}

    def record(*args: Any, **kwargs: Any) -> None:
        arguments.update(signature.bind(*args, **kwargs).arguments)
        raise RandmixError("stopped")

    monkeypatch.setattr(target, record)
    return arguments, signature


@pytest.mark.parametrize(("args", "target", "options", "expected"), [
    (["eval", "run", "-d", "synthetic"], "randmix_bench.robustness.evaluate", "options",
     EvalOptions(processes=available_cores())),  # --threads auto: a batch per core at once
    (["verify", "x.json"], "randmix_bench.verify.verify", "options", VerifyOptions()),
    (["quickstart"], "randmix_bench.quickstart.run", "cfg", QuickstartConfig()),
], ids=["eval", "verify", "quickstart"])
def test_command_defaults_are_the_librarys(monkeypatch: pytest.MonkeyPatch, args: list[str], target: str,
                                           options: str, expected: object) -> None:
    """A command given no options calls the library with the library's own defaults (its options object), but
    for what the thread policy sets."""
    monkeypatch.setattr("randmix_bench.entries.load_entry", lambda path: path)  # verify's entry, unread
    arguments, _ = called_with(monkeypatch, target)
    assert runner.invoke(app, args).exit_code == 2
    assert arguments[options] == expected


def test_shuffle_eval_defaults_are_the_librarys(monkeypatch: pytest.MonkeyPatch) -> None:
    arguments, signature = called_with(monkeypatch, "randmix_bench.shuffle_eval.evaluate_runs")
    assert runner.invoke(app, ["shuffle", "eval", "run", "-o", "out"]).exit_code == 2
    options = {name: value for name, value in arguments.items() if name not in ("runs", "out_dir", "progress")}
    assert options == {name: signature.parameters[name].default for name in options}
    assert set(options) == {"n_examples", "grid_images", "batch_size", "device", "data_dir", "force"}


PACKAGE = Path(randmix_bench.__file__).parent
LIBRARY = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "cli")


def test_every_library_module_is_checked() -> None:
    assert {"train.py", "verify.py", "quickstart.py", "reproduce.py", "robustness/harness.py"} <= set(LIBRARY)


@pytest.mark.parametrize("module", LIBRARY)
def test_the_library_draws_nothing(module: str) -> None:
    """Tables, consoles and progress bars belong to the command line (cli.views, cli.progress): every module
    outside randmix_bench/cli/ returns, calls back and logs. None imports Rich, and none imports the command line
    (tests/test_architecture.py checks the function-level imports too)."""
    tree = ast.parse((PACKAGE / module).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] == "rich"}
    loaded = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    loaded |= {node.module or "" for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert not {name for name in loaded if name.startswith("randmix_bench.cli")}
def test_shuffle_train_is_train_with_the_same_options() -> None:
    """`randmix shuffle train` declares no option of its own: names, help, defaults and requiredness are train's."""
    group = typer.main.get_command(app)
    shuffle = group.get_command(click.Context(group), "shuffle")  # type: ignore[attr-defined]
    train, alias = group.get_command(click.Context(group), "train"), shuffle.get_command(click.Context(shuffle), "train")  # type: ignore[attr-defined]  # noqa: E501

    def options(command: typer.core.TyperCommand) -> list[tuple]:
        return [(p.name, p.opts, p.secondary_opts, p.help, p.required, p.default) for p in command.params]

    assert options(alias) == options(train)
    names = {o for p in train.params for o in p.opts}
    assert {"--recipe", "-r", "--loss", "--permutation-seed", "--label-smoothing", "--wd", "--resume"} <= names


def _run(code: str) -> str:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1]).stdout


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["data", "--help"], ["shuffle", "--help"]])
def test_help_and_version_import_neither_torch_nor_a_command(args: list[str]) -> None:
    """Typer parses first: `randmix --help` / `--version` load no torch, timm, numpy or command module (the
    modules are counted, not the seconds: a busy machine makes any wall time flaky)."""
    out = _run("import sys\nfrom randmix_bench.cli import app\ntry:\n"
               f"    app({args!r}, prog_name='randmix')\nexcept SystemExit:\n    pass\n"
               "print('loaded:', *sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'numpy') "
               "or 'randmix_bench.cli.commands' in m))")
    assert "randmix" in out and out.strip().splitlines()[-1] == "loaded:", out


def test_no_heavy_module_is_imported_by_the_cli_app() -> None:
    heavy = _run("import sys\nimport randmix_bench.cli\n"
                 "print(*sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'numpy')))").split()
    assert heavy == []


def test_a_commands_imports_are_frozen_out_of_the_collectors_reach() -> None:
    """Loading a command module (torch, timm, pyautoattack) freezes what it imported, so that later collections,
    the interpreter's exit and forked children skip it; the collector is on again afterwards."""
    out = _run("import gc, sys\nfrom randmix_bench.cli import app\nbefore = gc.get_freeze_count()\ntry:\n"
               "    app(['eval', '--help'], prog_name='randmix')\nexcept SystemExit:\n    pass\n"
               "print('state:', gc.isenabled(), 'torch' in sys.modules, gc.get_freeze_count() - before)")
    enabled, imported, frozen = out.strip().splitlines()[-1].split()[1:]
    assert (enabled, imported) == ("True", "True") and int(frozen) > 100_000, out


def test_the_collector_is_restored_and_nothing_frozen_when_a_command_module_fails_to_import(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from randmix_bench.cli.app import _long_lived_imports

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))  # this test process's heap stays as it is
    with pytest.raises(ImportError), _long_lived_imports():
        assert not gc.isenabled()  # no collection while importing
        raise ImportError("a broken command module")
    assert gc.isenabled() and frozen == []
    gc.disable()  # a caller that turned the collector off keeps it off
    try:
        with _long_lived_imports():
            pass
        assert not gc.isenabled() and frozen == [True]
    finally:
        gc.enable()


def test_the_lazy_listing_is_each_commands_own_help() -> None:
    """`randmix --help` lists commands without importing them, by a line kept in cli/app.py: that line must be
    the first paragraph of the command's own help."""
    from randmix_bench.cli.app import DataGroup, RootGroup, ShuffleGroup, data_app, shuffle_app

    for group, typer_app in ((RootGroup, app), (ShuffleGroup, shuffle_app), (DataGroup, data_app)):
        for name, (module, line) in group.lazy.items():
            importlib.import_module(f"randmix_bench.cli.{module}")
            (info,) = [c for c in typer_app.registered_commands if c.name == name]
            own = " ".join(inspect.getdoc(info.callback).split("\n\n")[0].split())  # type: ignore[arg-type]
            assert own == line, f"{name}: {own!r} != {line!r}"


def test_models_published_lists_every_entry_with_its_timm_name() -> None:
    result = runner.invoke(app, ["models", "--published"], terminal_width=300)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "small-resnet-fmnist-chans-s0-linf" in line)
    assert "randmix_resnet_small.fashion_mnist" in row and "chans" in row
