"""An evaluation's inputs, validated and loaded by :func:`prepare` before anything is written: the options, the
checkpoint (and a transfer attack's source) on its device, the points to attack and where the result goes.

The cheapest mistake is reported first; a model that does not fit the data, or one trained on the bundled
Fashion-MNIST subset evaluated under another dataset's name, is refused in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from randmix_bench.checkpoint import CHECKPOINT_NAME, load_model, resolve
from randmix_bench.data import ImageSplit, load_split
from randmix_bench.device import resolve_device
from randmix_bench.errors import ExistsError, RandmixError
from randmix_bench.files import check_output_file
from randmix_bench.result_files import check_entry_name
from randmix_bench.results import AttackConfig
from randmix_bench.robustness.options import EvalOptions
from randmix_bench.tensors import to_unit
from randmix_bench.threat import ThreatModel
from randmix_bench.vocab import Attack, Norm

__all__ = ["Prepared", "prepare", "default_name", "default_output"]


def default_name(checkpoint: str | Path) -> str:
    """A run folder's name (also for ``<run>/checkpoint.safetensors``), else the checkpoint file's stem."""
    path = resolve(checkpoint)
    return path.parent.name if path.name == CHECKPOINT_NAME else path.stem


def default_output(dataset: str, norm: Norm, name: str, root: str | Path = "leaderboards") -> Path:
    """``leaderboards/<dataset>/<threat model>/<name>.json``, RobustBench's ``model_info`` layout."""
    return Path(root) / check_entry_name(Path(dataset).name, "the dataset's folder name") / norm / f"{name}.json"


def _check_label(meta: dict[str, Any], dataset: str) -> None:
    """A model trained on the bundled Fashion-MNIST subset is evaluated on it alone: its results must never
    be labelled, and ranked, as those of a model trained on full Fashion-MNIST."""
    trained_on = meta["extra"].get("train", {}).get("dataset")
    if trained_on == "fashion-mnist-mini" and Path(dataset).name != trained_on:
        raise RandmixError(f"the model was trained on fashion-mnist-mini (the bundled subset); evaluate it with "
                           f"--dataset fashion-mnist-mini, so that its results are not labelled {Path(dataset).name}")


def _check_fits(model: nn.Module, meta: dict[str, Any], split: ImageSplit, device: torch.device) -> None:
    """The model takes the dataset's images and predicts its number of classes, or a one-line error.

    The checkpoint's ``in_chans``/``num_classes`` are compared first: a forward pass alone would let a
    3-channel model run on 1-channel images, its in-model Normalize broadcasting them to 3 channels."""
    info, kwargs = split.info, meta["model_kwargs"]
    chans, classes = kwargs.get("in_chans"), kwargs.get("num_classes")
    if chans is not None and chans != info.in_chans:
        raise RandmixError(f"the model ({meta['model']}) takes {chans}-channel images but {info.name} has "
                           f"{info.in_chans}-channel images; evaluate it on the data it was trained for")
    if classes is not None and classes != info.num_classes:
        raise RandmixError(f"the model ({meta['model']}) predicts {classes} classes but {info.name} has "
                           f"{info.num_classes}; evaluate it on the data it was trained for")
    x = to_unit(split.images[:1].to(device))
    try:
        with torch.no_grad():
            out = model(x)
    except RuntimeError as e:
        raise RandmixError(f"the model does not take {split.info.name} images of shape {tuple(x.shape[1:])}: "
                           f"{str(e).splitlines()[0]}") from None
    if out.shape[-1] != split.info.num_classes:
        raise RandmixError(f"the model predicts {out.shape[-1]} classes but {split.info.name} has "
                           f"{split.info.num_classes}")


@dataclass
class Prepared:
    """What :func:`prepare` resolved: everything an evaluation needs, nothing written yet."""

    options: EvalOptions  # as given
    config: AttackConfig
    threat: ThreatModel  # the headline norm and eps
    sweep: tuple[ThreatModel, ...]  # the sweep's, by eps
    device: torch.device
    checkpoint: Path
    model: nn.Module  # on the device, in eval mode
    source: tuple[Path, nn.Module] | None  # a transfer attack's source checkpoint and model, on the device
    meta: dict[str, Any]  # the checkpoint's metadata
    dataset: str
    test: ImageSplit  # the whole test set
    points: ImageSplit  # its first n_examples points: the ones attacked
    name: str
    out: Path  # the result JSON
    curve: Path | None  # the robustness-curve PNG, with a sweep


def prepare(checkpoint: str | Path, dataset: str, options: EvalOptions = EvalOptions()) -> Prepared:
    """Validate every input and load the model and the points, in this order so that the cheapest
    mistake is reported first; nothing is written."""
    sweep = tuple(options.threat.at(eps) for eps in options.sweep)  # each eps checked under the norm
    config = options.attack_config()
    if sweep:
        options.sweep_config(config, options.threat.eps)  # validates --sweep-attacks before any work
    elif options.sweep_attacks:
        raise RandmixError("--sweep-attacks goes with --sweep (the eps values of the curve)")
    dev = resolve_device(options.device)
    if options.n_examples < 1:
        raise RandmixError(f"n_examples must be >= 1, got {options.n_examples}")
    if not 1 <= options.processes <= 256:
        raise RandmixError(f"processes must be in 1..256, got {options.processes}")
    if options.name is not None:
        check_entry_name(options.name)
    if (options.transfer_from is None) != (config.attack != Attack.TRANSFER):
        raise RandmixError("--attack transfer and --transfer-from CHECKPOINT (the model the examples are made on) "
                           "go together")
    if options.transfer_from is not None and options.sanity is not None:
        raise RandmixError("--sanity checks a white-box evaluation; a transfer attack is itself such a check")
    ckpt_path = resolve(checkpoint)
    model, meta = load_model(ckpt_path)
    _check_label(meta, dataset)
    test = load_split(dataset, train=False, data_dir=options.data_dir)
    points = test.first(options.n_examples)
    model = model.to(dev).eval()
    _check_fits(model, meta, points, dev)
    source = None
    if options.transfer_from is not None:
        source_path = resolve(options.transfer_from)
        if source_path.resolve() == ckpt_path.resolve():
            raise RandmixError("--transfer-from is the evaluated checkpoint itself; that is a white-box attack")
        source_model, source_meta = load_model(source_path)
        source_model = source_model.to(dev).eval()
        _check_fits(source_model, source_meta, points, dev)
        source = (source_path, source_model)

    name = options.name or check_entry_name(default_name(ckpt_path), "the run folder's name (or pass --name)")
    out_path = Path(options.out) if options.out is not None else default_output(dataset, options.threat.norm, name)
    check_output_file(out_path, "--out")
    if out_path.resolve() == ckpt_path.resolve():
        raise ExistsError(f"--out {out_path} is the checkpoint being evaluated; write the result beside it, e.g. "
                          f"--out {ckpt_path.with_suffix('.json')}")
    return Prepared(options=options, config=config, threat=options.threat, sweep=sweep, device=dev,
                    checkpoint=ckpt_path, model=model, source=source, meta=meta, dataset=dataset, test=test,
                    points=points, name=name, out=out_path,
                    curve=out_path.with_suffix(".png") if sweep else None)
