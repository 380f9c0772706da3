"""What a model is trained to do: one small class per task, chosen by the training config.

As timm picks a model class by name, :func:`task_for` picks the task class by ``TrainConfig.task`` and
builds it from the config's settings; :func:`build_model` builds the config's untrained model for that task
and dataset. The trainer, the benchmarks and the tests all build their models through it. Each task class
declares the settings it adds to a config (``settings_type``: :class:`ClassificationSettings`,
:class:`ShuffleSettings`); a recipe names its task by carrying them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from randmix_bench.data import DatasetInfo
from randmix_bench.files import jsonable
from randmix_bench.models import create_model
from randmix_bench.tasks.base import Task, TaskSettings
from randmix_bench.tasks.classification import ClassificationSettings, ClassificationTask, accuracy, predict
from randmix_bench.tasks.shuffle import ShuffleSettings, ShuffleTask
from randmix_bench.vocab import TaskKind

if TYPE_CHECKING:
    from randmix_bench.recipes import TrainConfig

__all__ = ["Task", "TaskSettings", "TASKS", "ClassificationTask", "ClassificationSettings", "ShuffleTask",
           "ShuffleSettings", "task_for", "build_model", "accuracy", "predict"]

TASKS: dict[TaskKind, type[Task]] = {TaskKind.CLASSIFICATION: ClassificationTask, TaskKind.SHUFFLE: ShuffleTask}


def task_for(cfg: TrainConfig) -> Task:
    """The task ``cfg.task`` names, built from ``cfg``'s settings (a shuffle task sizes its permutation from
    the dataset)."""
    return TASKS[cfg.task].for_config(cfg)


def build_model(cfg: TrainConfig, task: Task, info: DatasetInfo) -> tuple[nn.Module, dict[str, Any]]:
    """``cfg``'s untrained model for ``task`` on data like ``info``, its learned weights drawn from ``cfg.seed``,
    and the constructor arguments that rebuild it (what a checkpoint records, as JSON gives them back)."""
    mixing = {"mixing": cfg.mixing, "mixer_seed": cfg.mixer_seed, "smooth_sigma": cfg.smooth_sigma}
    kwargs = jsonable({**mixing, **task.model_kwargs(info)})
    torch.manual_seed(cfg.seed)
    return create_model(cfg.model, **{**kwargs, **mixing}), kwargs  # the model gets the Mixing member itself
