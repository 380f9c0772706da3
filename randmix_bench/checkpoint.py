"""Model checkpoints: weights and frozen mixer buffers in safetensors, the model's recipe in its metadata.

A checkpoint alone rebuilds its model (``load_model``), so eval, verify and robustbench interop need
no other file. A run folder holds ``checkpoint.safetensors`` beside ``run.json``. The trainer's metadata
``extra`` holds its training config (``train``) and task record (``task``); the config is read back in the
current layout whatever version wrote it (:func:`randmix_bench.recipes.complete_config`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as serialize
from torch import nn

from randmix_bench.errors import MAX_SEED, RandmixError
from randmix_bench.files import atomic_path, parse_json, sha256
from randmix_bench.loss_curve import MAX_EPOCHS
from randmix_bench.models import MAX_CLASSES, MAX_IN_CHANS, create_model, list_models, model_task
from randmix_bench.recipes import complete_config
from randmix_bench.vocab import Mixing, TaskKind

CHECKPOINT_NAME = "checkpoint.safetensors"
FORMAT = "randmix-checkpoint/1"
METADATA_KEY = "randmix"


class CheckpointError(RandmixError):
    """A checkpoint that is missing, corrupt, or does not match the model asked for."""


def resolve(path: str | Path) -> Path:
    """Accept a run folder or a ``.safetensors`` file; say what is missing otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; pass a run folder (with {CHECKPOINT_NAME}) "
                              "or a .safetensors file")
    return path


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    model_name: str,
    model_kwargs: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Save the state dict (frozen buffers included) and how to rebuild the model, atomically."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    # One metadata key: safetensors writes several in hash order, which would make the file's sha256
    # differ between two saves of the same weights.
    record = {"format": FORMAT, "model": model_name, "model_kwargs": model_kwargs, "extra": extra or {}}
    # serialized in memory, then written: a full disk is the write's OSError (one line), not safetensors' own error
    data = serialize(state, metadata={METADATA_KEY: json.dumps(record, sort_keys=True)})
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of the weights themselves: every tensor's name, dtype, shape and bytes, in name order. Unlike the
    file's sha256 it does not change with the metadata, so a run is the same run whatever its record says."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def digests(path: str | Path) -> tuple[str, str]:
    """(sha256 of the file, :func:`weights_digest` of its weights): what a result records of its checkpoint."""
    state, _ = read_checkpoint(path)
    return sha256(resolve(path)), weights_digest(state)


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata with ``model``, ``model_kwargs`` and ``extra`` decoded and checked; a training
    config in ``extra["train"]`` comes completed to the current layout).

    The metadata is untrusted input: ``model_kwargs`` go to ``timm.create_model``, which would also honour
    ``checkpoint_path``, ``pretrained_cfg`` and the like (pickle loads, file reads), so only the
    constructor arguments randmix itself writes are accepted (:func:`check_model_kwargs`)."""
    path = resolve(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({e}); re-copy it or retrain") from None
    try:
        record = parse_json(raw[METADATA_KEY].encode(), "its metadata")  # bounded depth: untrusted too
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise RandmixError(f"format {record.get('format') if isinstance(record, dict) else record!r}")
    except (KeyError, ValueError) as e:
        raise CheckpointError(
            f"{path} is not a {FORMAT} checkpoint ({e}); it was not written by randmix train"
        ) from None
    unknown = sorted(set(record) - RECORD_KEYS)
    if unknown:
        raise CheckpointError(f"{path}: unknown metadata key {unknown[0]!r} (valid: {', '.join(sorted(RECORD_KEYS))}); "
                              "the file was not written by randmix or was altered: use a checkpoint from randmix train")
    model, kwargs, extra = record.get("model"), record.get("model_kwargs", {}), record.get("extra", {})
    if model not in list_models():
        raise CheckpointError(f"{path}: metadata 'model' {model!r} is not a randmix model; valid choices: "
                              f"{', '.join(list_models())}")
    if not isinstance(extra, dict):
        raise CheckpointError(f"{path}: metadata 'extra' must be an object, got {type(extra).__name__}; "
                              "the file was altered")
    check_model_kwargs(model, kwargs, path)
    _check_extra(extra, path)
    if isinstance(extra.get("train"), dict):
        extra["train"] = complete_config(extra["train"], extra.get("task"))
    return state, {"model": model, "model_kwargs": kwargs, "extra": extra}


RECORD_KEYS = frozenset({"format", "model", "model_kwargs", "extra"})
_EXTRA_TYPES: dict[str, type] = {"epochs_done": int, "train": dict, "task": dict}
_TRAIN_LABEL_TYPES: dict[str, type] = {"seed": int, "recipe": str, "dataset": str, "epochs": int, "task": str}
_INT_RANGES: dict[tuple[str, str], tuple[int, int]] = {
    ("extra", "epochs_done"): (0, MAX_EPOCHS), ("extra.train", "seed"): (0, MAX_SEED),
    ("extra.train", "epochs"): (1, MAX_EPOCHS)}
"""The ints a result copies from the checkpoint, in the ranges its schema holds them to."""


def _check_extra(extra: dict[str, Any], path: Path) -> None:
    """The parts of ``extra`` that eval, verify and reproduce read (the run's labels, its dataset, its task) must
    have their types: a hand-edited value would otherwise end in a traceback, some of them after an evaluation's
    work is done."""
    def wrong(value: Any, kind: type) -> bool:
        return value is not None and (type(value) is bool or not isinstance(value, kind))

    train = extra.get("train")
    records: list[tuple[str, dict[str, Any], dict[str, type]]] = [("extra", extra, _EXTRA_TYPES)]
    if isinstance(train, dict):
        records.append(("extra.train", train, _TRAIN_LABEL_TYPES))
    for where, record, types in records:
        for key, kind in types.items():
            value, bounds = record.get(key), _INT_RANGES.get((where, key))
            if wrong(value, kind):
                what = {dict: "an object", int: "an int", str: "a string"}[kind]
            elif bounds is not None and value is not None and not bounds[0] <= value <= bounds[1]:
                what = f"an int from {bounds[0]} to {bounds[1]}"
            else:
                continue
            raise CheckpointError(f"{path}: metadata '{where}.{key}' must be {what}, got {value!r:.40}; "
                                  "the file was altered: use a checkpoint from randmix train")


def _int(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and low <= v <= high


def _finite(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _stats(positive: bool) -> Callable[[Any], bool]:
    return lambda v: v is None or (isinstance(v, list) and 1 <= len(v) <= MAX_IN_CHANS
                                   and all(_finite(x) and (x > 0 or not positive) for x in v))


_COMMON: dict[str, tuple[Callable[[Any], bool], str]] = {
    "in_chans": (_int(1, MAX_IN_CHANS), f"an int from 1 to {MAX_IN_CHANS}"),
    "mean": (_stats(positive=False), f"a list of 1 to {MAX_IN_CHANS} finite numbers"),
    "std": (_stats(positive=True), f"a list of 1 to {MAX_IN_CHANS} finite positive numbers"),
    "mixing": (lambda v: v in {m.value for m in Mixing}, f"one of {', '.join(m.value for m in Mixing)}"),
    "mixer_seed": (_int(0, MAX_SEED), f"an int from 0 to {MAX_SEED}"),
    "smooth_sigma": (lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
}
ALLOWED_KWARGS: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "classifier": {**_COMMON, "num_classes": (_int(1, MAX_CLASSES), f"an int from 1 to {MAX_CLASSES}")},
    "unshuffler": _COMMON,
}
"""Per model family, the constructor arguments a checkpoint may carry (those randmix train, shuffle train
and the tests write) and what each value must be."""


def check_model_kwargs(model: str, kwargs: Any, source: str | Path) -> None:
    """Refuse any constructor argument randmix does not write, and any value of the wrong type."""
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"{source}: metadata 'model_kwargs' must be an object, got {type(kwargs).__name__}; "
                              "the file was altered")
    allowed = ALLOWED_KWARGS["unshuffler" if model_task(model) is TaskKind.SHUFFLE else "classifier"]
    for key, value in kwargs.items():
        if key not in allowed:
            raise CheckpointError(f"{source}: model_kwargs key {key!r} is not allowed for {model} (valid: "
                                  f"{', '.join(allowed)}); the file was altered or not written by randmix: "
                                  "do not load it")
        check, what = allowed[key]
        if not check(value):
            raise CheckpointError(f"{source}: model_kwargs {key!r} must be {what}, got {value!r}; the file was altered")


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming the mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{label} {keys[:3]}{'...' if len(keys) > 3 else ''}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)) if keys]
        raise CheckpointError(f"checkpoint {source} does not match {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def run_labels(model: nn.Module, meta: dict[str, Any]) -> dict[str, Any]:
    """What a result records about the run a checkpoint holds, read from the checkpoint itself (its rebuilt
    ``model``'s mixing and its metadata): written by ``randmix eval`` and re-checked by ``randmix verify``, so a
    result relabelled by hand (another seed, sigma, recipe...) is caught. None: not recorded by the trainer."""
    mixing = getattr(model, "mixing", None)
    return {
        **record_labels(meta),
        "mixing": str(mixing.mixing) if mixing is not None else str(Mixing.FULL),
        "mixer_seed": mixing.seed if mixing is not None else 0,
        "smooth_sigma": mixing.smooth_sigma if mixing is not None else 0.0,
    }


def record_labels(meta: dict[str, Any]) -> dict[str, Any]:
    """The labels of :func:`run_labels` that the metadata alone gives (no model is built): model, mixing mode,
    training seed, recipe and epochs."""
    train = meta["extra"].get("train", {})
    return {"model": meta["model"], "mixing": str(meta["model_kwargs"].get("mixing", Mixing.FULL)),
            "train_seed": train.get("seed"), "train_recipe": train.get("recipe"),
            "train_epochs": meta["extra"].get("epochs_done")}


def pretrained_tag(meta: dict[str, Any]) -> str | None:
    """The timm pretrained tag of the dataset a checkpoint was trained on (``fashion_mnist``), from its training
    config; None for an image folder or a checkpoint without one. Checkpoints carry no ``pretrained_cfg`` of their
    own (published files stay byte for byte as their results record them): the tag's config says it."""
    from randmix_bench.data import DATASETS
    from randmix_bench.models._common import dataset_tag

    dataset = meta["extra"].get("train", {}).get("dataset")
    return dataset_tag(dataset) if dataset in DATASETS and dataset != "synthetic" else None


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint was saved from and load its weights; returns (model, metadata). The
    model's ``pretrained_cfg`` is its dataset's (:func:`pretrained_tag`), so ``timm.data.resolve_data_config``
    gives its input size and channels."""
    state, meta = read_checkpoint(path)
    tag = pretrained_tag(meta)
    model = create_model(meta["model"], **meta["model_kwargs"], **({"pretrained_cfg": tag} if tag else {}))
    load_state(model, state, path)
    return model.to(map_location).eval(), meta
