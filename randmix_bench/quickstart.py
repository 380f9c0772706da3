"""``randmix quickstart``: the benchmark's main job end to end, offline, in a few minutes on a CPU.

It trains a small ``full`` and a small ``chans`` model with the ordinary trainer, attacks each with the
ordinary robustness harness (RobustBench's protocol with a cheap AutoAttack configuration), writes their
result JSON into a leaderboard folder, renders it with ``randmix leaderboard``'s generator and returns
the comparison. Only the sizes are small: the code path is the one the GPU runs take.

It says first which data it runs on (through its :class:`QuickstartReporter`): full Fashion-MNIST when it is
here, else the subset bundled with the package (``fashion-mnist-mini``), never noise unless asked for. What the
run shows and what it does not is :func:`scope`, which the command prints under its table (drawn by
:mod:`randmix_bench.cli.views`).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from randmix_bench import leaderboard
from randmix_bench.checkpoint import CHECKPOINT_NAME
from randmix_bench.data import load_split
from randmix_bench.device import resolve_device
from randmix_bench.errors import RandmixError
from randmix_bench.files import check_writable
from randmix_bench.recipes import TrainConfig, get_recipe
from randmix_bench.results import RobustnessResult
from randmix_bench.robustness import EvalOptions, ProgressReporter, evaluate
from randmix_bench.run_folder import check_run_dir
from randmix_bench.threads import cpu_threads, parse_threads
from randmix_bench.threat import Eps, ThreatModel, parse_eps_list
from randmix_bench.train import TrainReporter, train
from randmix_bench.vocab import Attack, Mixing, Norm, n_epochs

__all__ = ["QuickstartConfig", "QuickstartRow", "QuickstartReporter", "run", "resolve_dataset", "scope",
           "DEFAULT_DATASET", "FALLBACK_DATASET"]

log = logging.getLogger(__name__)

DEFAULT_DATASET = "fashion-mnist"
FALLBACK_DATASET = "fashion-mnist-mini"  # ships with the package: real images on any machine
SOURCES = {  # what each dataset's images are, in the run's first line
    DEFAULT_DATASET: "Fashion-MNIST",
    FALLBACK_DATASET: "the subset of Fashion-MNIST bundled with randmix-bench",
    "synthetic": "seeded noise around 10 random class templates, not real images",
}


@dataclass(frozen=True)
class QuickstartConfig:
    """What the quickstart trains, how it attacks, where it runs and writes (``randmix quickstart``'s defaults);
    the defaults ran in 94 s on a 2-core CPU (this project's machine, 2026-11-25)."""

    out: str | Path = Path("runs/quickstart")  # its run folders and leaderboards/ are overwritten
    dataset: str = DEFAULT_DATASET
    variants: tuple[Mixing, ...] = (Mixing.FULL, Mixing.CHANS)
    recipe: str = "quick"  # ConvMixer-32/2 (kernel 3, patch 4), AdamW, batch 128
    epochs: int = 1
    n_examples: int = 500  # the first n test points, as RobustBench takes them
    # Linf, by value (parse_eps_list); the largest (0.1, the usual Fashion-MNIST eps) is the headline
    eps: tuple[Eps, ...] = parse_eps_list("0.02,0.1", Norm.LINF)
    n_iter: int | None = None  # APGD iterations; None keeps AutoAttack's 100
    seed: int = 0
    device: str = "cpu"
    # torch CPU threads, a count or "auto" (randmix_bench.threads); None: as set. 1: this model's ops are too small
    # to gain from a second thread.
    threads: int | str | None = 1
    data_dir: str | Path | None = None  # where the dataset is (see randmix_bench.data)

    def attack_description(self) -> str:
        iterations = self.n_iter or 100
        return (f"AutoAttack custom: APGD-CE alone ({iterations} iterations, 5 restarts), Linf; an upper bound on "
                "AutoAttack standard's robust accuracy")


@dataclass
class QuickstartRow:
    """One variant: its training summary and its leaderboard entry."""

    variant: str
    summary: dict[str, Any]  # the trainer's run.json
    result: RobustnessResult
    path: Path  # the result JSON


class QuickstartReporter(Protocol):
    """What the quickstart says while it runs, for its caller to show (the command line: ``cli.views``)."""

    def data(self, line: str) -> None:
        """Which data it runs on: said before any work, so that it stands above any error."""

    def stage(self, title: str) -> None:
        """A step begins: one variant's training, or its attack."""


class LogReporter:
    """The reporter when none is given: the same lines through ``logging``."""

    def data(self, line: str) -> None:
        log.info(line)

    def stage(self, title: str) -> None:
        log.info(title)


def resolve_dataset(name: str, data_dir: str | Path | None) -> tuple[str, str]:
    """The dataset to run on, and a line that says plainly which data that is. The default falls back to the
    bundled Fashion-MNIST subset when the full dataset is not here; any other missing dataset is an error."""
    why = ""
    try:
        load_split(name, train=False, data_dir=data_dir)
    except FileNotFoundError as e:
        if name != DEFAULT_DATASET:
            raise
        name, why = FALLBACK_DATASET, f"\nFull Fashion-MNIST is not here, so its bundled subset stands in: {e}"
    train_n, test_n = (len(load_split(name, train, data_dir)) for train in (True, False))
    source = f"{SOURCES[name]}: " if name in SOURCES else ""
    return name, f"data: {name} ({source}{train_n:,} train / {test_n:,} test images){why}"


def scope(dataset: str) -> str:
    """What a quickstart on ``dataset`` shows and what it does not, worded for that data."""
    if dataset == "synthetic":
        shows = ("runs offline on this machine; on `synthetic` noise its accuracies say nothing about spatial "
                 "mixing on real images")
    else:
        shows = ("runs offline on this machine, and how close a network whose spatial filters stay at their random "
                 f"init gets to a fully learned one on real images ({dataset})")
    if dataset == FALLBACK_DATASET:
        shows += (", trained on 1/6 of Fashion-MNIST's training images and tested on 1/5 of its test images, so its "
                  "numbers are not comparable with full Fashion-MNIST results")
    return (f"What this shows: the whole pipeline (trainer, frozen random mixers, AutoAttack harness, result JSON, "
            f"leaderboard) {shows}. What it does not: the paper's claims at scale. The model is tiny (ConvMixer-32/2, "
            "4k parameters) and trained briefly (one epoch by default); robust accuracy comes from APGD-CE alone (an "
            "upper bound on AutoAttack standard) on the first few hundred test points, where one standard error is "
            "up to a few points. The GPU recipes and the leaderboards/ entries are the benchmark.")


def run(cfg: QuickstartConfig = QuickstartConfig(), reporter: QuickstartReporter | None = None,
        training: TrainReporter | None = None, attacking: ProgressReporter | None = None) -> list[QuickstartRow]:
    """Train and evaluate every variant into ``cfg.out`` (its run folders and ``leaderboards/`` are
    overwritten), render ``cfg.out/leaderboards/README.md``, and return one row per variant. ``training``
    hears each training run's progress, ``attacking`` each attack's (none: quietly). ``cfg.threads`` follows the
    CLI's thread policy (:mod:`randmix_bench.threads`)."""
    with cpu_threads(None if cfg.threads is None else parse_threads(cfg.threads)):
        return _run(cfg, reporter or LogReporter(), training, attacking)


def check_out_dir(out: Path, variants: tuple[Mixing, ...]) -> None:
    """Refuse an ``out`` that quickstart would overwrite but did not write: a file, an unwritable path, or a
    folder holding anything besides its run folders (randmix runs) and ``leaderboards/``."""
    check_writable(out, "--out")
    if not out.is_dir():
        return
    ours = {*variants, "leaderboards", *(f".{v}.lock" for v in variants)}
    foreign = sorted(p.name for p in out.iterdir() if p.name not in ours)
    if foreign:
        raise RandmixError(f"--out {out} holds files quickstart did not write ({', '.join(foreign[:3])}"
                           f"{', ...' if len(foreign) > 3 else ''}); choose a new folder or one a quickstart wrote")
    for variant in variants:
        check_run_dir(out / variant, resume=False, force=True)


def _run(cfg: QuickstartConfig, reporter: QuickstartReporter, training: TrainReporter | None,
         attacking: ProgressReporter | None) -> list[QuickstartRow]:
    # Every option is checked before any training: a bad one must not cost minutes of work first.
    if not cfg.eps:
        raise RandmixError("give at least one eps, e.g. --eps 0.1")
    if cfg.n_examples < 1:
        raise RandmixError(f"n_examples must be >= 1, got {cfg.n_examples}; pass e.g. -n 500")
    attack = EvalOptions(attack=Attack.APGD_CE, threat=ThreatModel(Norm.LINF, cfg.eps[-1]), sweep=cfg.eps,
                         n_examples=cfg.n_examples, batch_size=cfg.n_examples, n_iter=cfg.n_iter, seed=cfg.seed,
                         data_dir=cfg.data_dir, device=cfg.device)  # each variant's evaluation, less name and file
    attack.attack_config()  # raises for a bad --n-iter
    resolve_device(cfg.device)
    out = Path(cfg.out)
    check_out_dir(out, cfg.variants)
    dataset, data_line = resolve_dataset(cfg.dataset, cfg.data_dir)
    reporter.data(data_line)
    n_test = len(load_split(dataset, train=False, data_dir=cfg.data_dir))
    if cfg.n_examples > n_test:
        raise RandmixError(f"-n {cfg.n_examples} is more than the {n_test:,} {dataset} test points; "
                           f"pass -n {n_test} or less")
    recipes: dict[Mixing, TrainConfig] = {
        variant: get_recipe(cfg.recipe).override(dataset=dataset, epochs=cfg.epochs, mixing=variant, seed=cfg.seed,
                                                 data_dir=None if cfg.data_dir is None else str(cfg.data_dir))
        for variant in cfg.variants
    }
    rows = []
    for variant, recipe in recipes.items():
        reporter.stage(f"{variant}: train {recipe.model} on {dataset} ({n_epochs(cfg.epochs)}, recipe {cfg.recipe})")
        summary = train(recipe, out / variant, force=True, device=cfg.device, reporter=training)
        reporter.stage(f"{variant}: attack the first {cfg.n_examples} test points")
        entry = out / "leaderboards" / dataset / "Linf" / f"{variant}.json"
        entry.parent.mkdir(parents=True, exist_ok=True)
        # the checkpoint goes beside its entry: a leaderboard only reads checkpoints inside its own folder
        checkpoint = shutil.copyfile(out / variant / CHECKPOINT_NAME, entry.with_suffix(".safetensors"))
        output = evaluate(checkpoint, dataset, replace(attack, name=f"quickstart-{variant}", out=entry), force=True,
                          progress=attacking, command="randmix quickstart")
        rows.append(QuickstartRow(variant, summary, output.result, output.path))
    leaderboard.write(out / "leaderboards")
    return rows
