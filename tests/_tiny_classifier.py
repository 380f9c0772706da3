"""A tiny randmix classifier trained for a few seconds on the ``synthetic`` dataset, for the eval tests.

Trained (not random) so that clean accuracy is high and robust accuracy depends on eps, which is what
the robustness tests need to show that attacks, resume and interop change and keep the right numbers.
"""

from __future__ import annotations

from pathlib import Path

import torch

from randmix_bench.checkpoint import save_checkpoint
from randmix_bench.data import load_split
from randmix_bench.models import create_model
from randmix_bench.tasks import ClassificationTask

MODEL = "randmix_convmixer_tiny"


def train_tiny_checkpoint(path: Path, *, mixing: str = "chans", steps: int = 60, seed: int = 0) -> Path:
    """Train ``randmix_convmixer_tiny`` with AdamW on synthetic data and save it at ``path``."""
    torch.manual_seed(seed)
    train = load_split("synthetic", train=True)
    task = ClassificationTask()
    kwargs = dict(task.model_kwargs(train.info), mixing=mixing)
    model = create_model(MODEL, **kwargs)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(train), (128,), generator=generator)
        loss = task.batch_loss(model, train.images[idx].float() / 255, train.labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    save_checkpoint(path, model.eval(), MODEL, kwargs, {"train": {"seed": seed}})  # where randmix train keeps its seed
    return path
