"""``randmix train`` and its alias ``randmix shuffle train``: one trainer, options declared in :mod:`.options`."""

from __future__ import annotations

from typing import Any

from randmix_bench.cli import options as opts
from randmix_bench.cli.app import app, shuffle_app
from randmix_bench.cli.errors import user_errors
from randmix_bench.vocab import TaskKind


@app.command("train")
@user_errors
def train_command(
    recipe: opts.Recipe,
    out: opts.Out,
    model: opts.Model = None,
    mixing: opts.MixingMode = None,
    dataset: opts.Dataset = None,
    data_dir: opts.DataDir = None,
    epochs: opts.Epochs = None,
    batch_size: opts.BatchSize = None,
    lr: opts.Lr = None,
    weight_decay: opts.WeightDecay = None,
    optimizer: opts.OptimizerName = None,
    momentum: opts.Momentum = None,
    lr_schedule: opts.LrSchedule = None,
    decay_norm_bias: opts.DecayNormBias = None,
    grad_clip: opts.GradClip = None,
    label_smoothing: opts.LabelSmoothing = None,
    loss: opts.LossName = None,
    permutation_seed: opts.PermutationSeed = None,
    crop_padding: opts.CropPadding = None,
    flip: opts.Flip = None,
    randaugment_n: opts.RandaugmentN = None,
    randaugment_m: opts.RandaugmentM = None,
    seed: opts.Seed = None,
    mixer_seed: opts.MixerSeed = None,
    smooth_sigma: opts.SmoothSigma = None,
    eval_batch_size: opts.EvalBatchSize = None,
    compile: opts.Compile = None,
    device: opts.Device = None,
    resume: opts.Resume = False,
    force: opts.Force = False,
    quiet: opts.Quiet = False,
    threads: opts.Threads = opts.AUTO,
) -> None:
    """Train a model with a named recipe, classification or pixel un-shuffling (multi-GPU: torchrun
    --nproc_per_node=N -m randmix_bench.cli train ...)."""
    opts.train_from_options(None, **locals())  # every parameter is an option


@shuffle_app.command("train")
@user_errors
@opts.same_options(train_command)
def shuffle_train_command(**options: Any) -> None:
    """Train an unshuffler to reconstruct images from their pixel-shuffled versions: `randmix train` with a
    shuffle recipe."""
    opts.train_from_options(TaskKind.SHUFFLE, **options)
