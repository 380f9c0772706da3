"""``randmix train`` and its alias ``randmix shuffle train``: one trainer, its options declared once.

Every training option is an ``Annotated`` type here (the Typer idiom for an option reused by several commands);
both commands take the same ones, and :func:`train_from_options` turns them into a
:class:`~randmix_bench.recipes.TrainConfig`: the named recipe with each option given overriding its field, the
names (``--mixing``, ``--optimizer``) parsed into their vocabulary members here, once. The alias only fixes the
task, so it takes the shuffle recipes alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from randmix_bench.cli.app import app, shuffle_app
from randmix_bench.cli.errors import user_errors
from randmix_bench.cli.options import AUTO, PATH, Threads
from randmix_bench.recipes import RECIPES
from randmix_bench.vocab import Loss, Mixing, Optimizer, TaskKind

F = TypeVar("F", bound=Callable[..., Any])


def _recipes(task: TaskKind) -> str:
    return ", ".join(name for name, cfg in RECIPES.items() if cfg.task == task)


Recipe = Annotated[str, typer.Option(
    "--recipe", "-r", help=f"Named recipe from randmix_bench/recipes.py; classification: "
    f"{_recipes(TaskKind.CLASSIFICATION)}; shuffle (all `randmix shuffle train` takes): {_recipes(TaskKind.SHUFFLE)}. "
    "Options below override its fields.")]
Out = Annotated[Path, typer.Option("--out", "-o", **PATH,
                                   help="Run folder: checkpoint.safetensors and run.json.")]
Model = Annotated[str | None, typer.Option(
    help="randmix timm model (see `randmix models`): a classifier, or an unshuffler (randmix_unshuffler_*) for "
    "shuffle.")]
MixingMode = Annotated[str | None, typer.Option("--mixing", "-m", help=f"{', '.join(Mixing.values())}.")]
Dataset = Annotated[str | None, typer.Option(
    help="cifar10, cifar100, mnist, fashion-mnist, fashion-mnist-mini (bundled), cifar10-jpeg, synthetic, or an image "
    "folder/.tar.gz.")]
DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", **PATH,
    help="Where datasets are (and are downloaded to); default $RANDMIX_DATA or ~/.cache/randmix/data.")]
Epochs = Annotated[int | None, typer.Option(help="Epochs.")]
BatchSize = Annotated[int | None, typer.Option(
    "--batch-size", "-b", help="Global batch size (split across torchrun processes).")]
Lr = Annotated[float | None, typer.Option(help="Peak learning rate.")]
WeightDecay = Annotated[float | None, typer.Option("--weight-decay", "--wd", help="Weight decay.")]
OptimizerName = Annotated[str | None, typer.Option(help=f"{' or '.join(Optimizer.values())} (Nesterov).")]
Momentum = Annotated[float | None, typer.Option(help="SGD momentum.")]
LrSchedule = Annotated[str | None, typer.Option(
    "--lr-schedule", help="Piecewise-linear lr as fraction:multiplier pairs, e.g. 0:0,0.4:1,0.8:0.05,1:0.")]
DecayNormBias = Annotated[bool | None, typer.Option(
    "--decay-norm-bias/--no-decay-norm-bias", help="Weight decay on norm scales/shifts and biases too.")]
GradClip = Annotated[float | None, typer.Option("--grad-clip", help="Max global gradient norm (0 = off).")]
LabelSmoothing = Annotated[float | None, typer.Option(
    "--label-smoothing", help="Classification: label smoothing of the cross-entropy.")]
LossName = Annotated[str | None, typer.Option(help=f"Shuffle: reconstruction loss, {' or '.join(Loss.values())}.")]
PermutationSeed = Annotated[int | None, typer.Option(
    "--permutation-seed", help="Shuffle: seed of the pixel permutation (stored with the run).")]
CropPadding = Annotated[int | None, typer.Option(
    "--crop-padding", help="Random crop after zero padding by this many pixels (0 = off).")]
Flip = Annotated[bool | None, typer.Option("--flip/--no-flip", help="Random horizontal flips (of the original image).")]
RandaugmentN = Annotated[int | None, typer.Option("--randaugment-n", help="RandAugment ops per image (0 = off).")]
RandaugmentM = Annotated[int | None, typer.Option("--randaugment-m", help="RandAugment magnitude (0..30).")]
Seed = Annotated[int | None, typer.Option(help="Seed of learned-weight init, data order and augmentation.")]
MixerSeed = Annotated[int | None, typer.Option("--mixer-seed", help="Seed of the frozen random mixers.")]
SmoothSigma = Annotated[float | None, typer.Option("--smooth-sigma", help="Gaussian sigma of chans-smooth filters.")]
EvalBatchSize = Annotated[int | None, typer.Option("--eval-batch-size", help="Test-set batch size.")]
Compile = Annotated[bool | None, typer.Option(
    "--compile/--no-compile", help="torch.compile the model and augmentation (CUDA).")]
Device = Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).")]
Resume = Annotated[bool, typer.Option(
    "--resume", help="Continue the run in --out from its last finished epoch (repeat the original options).")]
Force = Annotated[bool, typer.Option("--force", help="Train into a non-empty --out, overwriting its run.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary line.")]


def same_options(command: Callable[..., Any]) -> Callable[[F], F]:
    """Give the decorated ``fn(**options)`` the options of ``command``: an alias that declares nothing twice."""

    def decorate(fn: F) -> F:
        fn.__signature__ = inspect.signature(command, eval_str=True)  # type: ignore[attr-defined]
        return fn

    return decorate


@app.command("train")
@user_errors
def train_command(
    recipe: Recipe,
    out: Out,
    model: Model = None,
    mixing: MixingMode = None,
    dataset: Dataset = None,
    data_dir: DataDir = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    lr: Lr = None,
    weight_decay: WeightDecay = None,
    optimizer: OptimizerName = None,
    momentum: Momentum = None,
    lr_schedule: LrSchedule = None,
    decay_norm_bias: DecayNormBias = None,
    grad_clip: GradClip = None,
    label_smoothing: LabelSmoothing = None,
    loss: LossName = None,
    permutation_seed: PermutationSeed = None,
    crop_padding: CropPadding = None,
    flip: Flip = None,
    randaugment_n: RandaugmentN = None,
    randaugment_m: RandaugmentM = None,
    seed: Seed = None,
    mixer_seed: MixerSeed = None,
    smooth_sigma: SmoothSigma = None,
    eval_batch_size: EvalBatchSize = None,
    compile: Compile = None,
    device: Device = None,
    resume: Resume = False,
    force: Force = False,
    quiet: Quiet = False,
    threads: Threads = AUTO,
) -> None:
    """Train a model with a named recipe, classification or pixel un-shuffling (multi-GPU: torchrun
    --nproc_per_node=N -m randmix_bench.cli train ...)."""
    train_from_options(None, **locals())  # every parameter is an option


@shuffle_app.command("train")
@user_errors
@same_options(train_command)
def shuffle_train_command(**options: Any) -> None:
    """Train an unshuffler to reconstruct images from their pixel-shuffled versions: `randmix train` with a
    shuffle recipe."""
    train_from_options(TaskKind.SHUFFLE, **options)


def train_from_options(task: TaskKind | None, *, recipe: str, out: Path, data_dir: Path | None,
                       lr_schedule: str | None, device: str | None, resume: bool, force: bool, quiet: bool,
                       threads: str, **fields: Any) -> None:
    """Train the recipe ``recipe`` (one of ``task``'s when given) with every option given (not None) overriding
    its field; ``fields`` are the options named like TrainConfig fields."""
    from randmix_bench.cli.app import console
    from randmix_bench.cli.progress import TrainProgress
    from randmix_bench.recipes import NAMED_FIELDS, get_recipe, parse_lr_schedule
    from randmix_bench.threads import cpu_threads, parse_threads
    from randmix_bench.train import train

    base = get_recipe(recipe, task)
    named = {name: kind.parse(fields[name]) for name, kind in NAMED_FIELDS.items() if fields[name] is not None}
    cfg = base.override(
        data_dir=None if data_dir is None else str(data_dir),
        lr_schedule=None if lr_schedule is None else parse_lr_schedule(lr_schedule), **{**fields, **named})
    note = None
    if cfg.dataset == "synthetic" and fields.get("dataset") is None:  # the smoke recipes' data, never a silent one
        note = (f"data: synthetic, recipe {cfg.recipe}'s dataset: seeded noise around 10 class templates, not images, "
                "so it shows only that the code runs; pass --dataset fashion-mnist (or another) for real images")
    with cpu_threads(parse_threads(threads)):
        train(cfg, out, resume=resume, force=force, device=device,
              reporter=None if quiet else TrainProgress(console, first_line=note))
