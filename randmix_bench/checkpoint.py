"""Model checkpoints: weights and frozen mixer buffers in safetensors, the model's recipe in its metadata.

A checkpoint alone rebuilds its model (``load_model``), so eval, verify and robustbench interop need
no other file. A run folder holds ``checkpoint.safetensors`` beside ``run.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from randmix_bench.errors import RandmixError
from randmix_bench.files import atomic_path
from randmix_bench.models import create_model

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
        raise CheckpointError(f"no checkpoint at {path}; pass a run folder (with {CHECKPOINT_NAME}) or a .safetensors file")
    return path


def save_checkpoint(path: str | Path, model: nn.Module, model_name: str, model_kwargs: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Save the state dict (frozen buffers included) and how to rebuild the model, atomically."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    # One metadata key: safetensors writes several in hash order, which would make the file's sha256
    # differ between two saves of the same weights.
    record = {"format": FORMAT, "model": model_name, "model_kwargs": model_kwargs, "extra": extra or {}}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(record, sort_keys=True)})


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata with ``model``, ``model_kwargs`` and ``extra`` decoded)."""
    path = resolve(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({e}); re-copy it or retrain") from None
    try:
        record = json.loads(raw[METADATA_KEY])
        if record.get("format") != FORMAT:
            raise RandmixError(f"format {record.get('format')!r}")
    except (KeyError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint ({e}); it was not written by randmix train") from None
    return state, {k: record[k] for k in ("model", "model_kwargs", "extra")}


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


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint was saved from and load its weights; returns (model, metadata)."""
    state, meta = read_checkpoint(path)
    model = create_model(meta["model"], **meta["model_kwargs"])
    load_state(model, state, path)
    return model.to(map_location).eval(), meta
