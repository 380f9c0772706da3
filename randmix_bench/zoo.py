"""The published models by name, as RobustBench's model zoo has them: ``load_model("small-convmixer-fmnist-chans-s0")``.

Each entry under ``leaderboards/`` names its checkpoint; :func:`published` lists them with the timm name that
loads the same network through timm alone (``timm.create_model(timm_name, checkpoint_path=checkpoint)``), and
:func:`load_model` rebuilds one from its checkpoint, verified against the sha256 its entry records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from randmix_bench.checkpoint import load_model as load_checkpoint
from randmix_bench.checkpoint import pretrained_tag, read_checkpoint
from randmix_bench.entries import Entry, load_entries
from randmix_bench.errors import RandmixError, choices_error
from randmix_bench.files import sha256

__all__ = ["DEFAULT_LEADERBOARD_DIR", "Published", "published", "load_model"]

DEFAULT_LEADERBOARD_DIR = Path("leaderboards")


@dataclass(frozen=True)
class Published:
    """One published entry: its name (the result file's stem), what it is, and how timm loads it."""

    name: str
    dataset: str
    model: str
    mixing: str
    metric: str  # "clean %" or "PSNR dB"
    value: float
    timm_name: str  # <model>.<dataset tag>
    checkpoint: Path
    entry: Entry


def _published(entry: Entry) -> Published:
    _, meta = read_checkpoint(entry.checkpoint)
    tag = pretrained_tag(meta)
    timm_name = f"{meta['model']}.{tag}" if tag else meta["model"]
    if entry.is_robustness:
        rb = entry.randmix
        return Published(entry.path.stem, rb.dataset, meta["model"], rb.mixing, "clean %", 100 * rb.clean_acc,
                         timm_name, entry.checkpoint, entry)
    s = entry.shuffle
    return Published(entry.path.stem, s.dataset, meta["model"], s.mixing, "PSNR dB", s.psnr, timm_name,
                     entry.checkpoint, entry)


def published(leaderboard_dir: str | Path = DEFAULT_LEADERBOARD_DIR) -> list[Published]:
    """Every entry under ``leaderboard_dir``, sorted by name."""
    return sorted((_published(e) for e in load_entries(leaderboard_dir)), key=lambda p: p.name)


def load_model(name: str, leaderboard_dir: str | Path = DEFAULT_LEADERBOARD_DIR,
               map_location: str = "cpu") -> nn.Module:
    """The published model ``name`` (a result file's stem, see ``randmix models --published``), in eval mode,
    its ``pretrained_cfg`` its dataset's. Its checkpoint must hash to what the entry records."""
    entries = {e.path.stem: e for e in load_entries(leaderboard_dir)}
    if name not in entries:
        raise choices_error("published model", name, sorted(entries))
    entry = entries[name]
    if sha256(entry.checkpoint) != entry.checkpoint_ref.sha256:
        raise RandmixError(f"{entry.checkpoint} does not hash to the sha256 its entry {entry.rel} records; restore it "
                           "(git checkout -- leaderboards/)")
    model, _ = load_checkpoint(entry.checkpoint, map_location)
    return model
