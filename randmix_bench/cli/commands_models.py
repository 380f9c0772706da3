"""``randmix models``: the registered models and their parameter counts."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer

from randmix_bench.cli.app import app, console
from randmix_bench.cli.errors import user_errors
from randmix_bench.cli.options import PATH
from randmix_bench.errors import RandmixError
from randmix_bench.vocab import Mixing, TaskKind


@app.command("models")
@user_errors
def models_command(
    mixing: list[str] = typer.Option(
        [m.value for m in Mixing], "--mixing", "-m", help="Variants to list (repeatable)."
    ),
    in_chans: int = typer.Option(3, help="Input channels to build the models with."),
    num_classes: int = typer.Option(10, help="Classes to build the classifiers with (unshufflers have none)."),
    published: bool = typer.Option(False, "--published", help="List the published models instead: the names "
                                   "`randmix_bench.load_model` takes and the timm names that load their checkpoints."),
    leaderboard_dir: Path = typer.Option(Path("leaderboards"), "--dir", **PATH,
                                         help="Leaderboard folder for --published."),
) -> None:
    """List the registered randmix models with trainable and frozen parameter counts per variant, or the published
    ones (--published)."""
    if published:
        from randmix_bench.zoo import published as list_published

        lines = [("name", "dataset", "mixing", "metric", "timm name (with checkpoint_path=<checkpoint>)", "checkpoint")]
        models = list_published(leaderboard_dir)
        if not models:
            raise RandmixError(f"{leaderboard_dir} holds no result files; pass --dir with the leaderboards folder")
        lines += [(p.name, p.dataset, p.mixing, f"{p.value:.2f} {p.metric}", p.timm_name, str(p.checkpoint))
                 for p in models]
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
        for row in lines:  # plain aligned lines, never wrapped or cut: the names are meant to be copied
            console.print("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1],
                          highlight=False, soft_wrap=True, markup=False)
        return
    from randmix_bench.cli.views import ModelRow, models_tables
    from randmix_bench.freezing import MixingReport, count_parameters
    from randmix_bench.models import create_model, list_models, model_task
    from randmix_bench.vocab import Mixing

    variants = [Mixing.parse(m) for m in mixing]
    rows = []
    for name in list_models():
        task = model_task(name)
        head = {"num_classes": num_classes} if task is TaskKind.CLASSIFICATION else {}
        for variant in variants:
            model = create_model(name, mixing=variant, in_chans=in_chans, **head)
            trainable, frozen = count_parameters(model)
            report = cast(MixingReport, model.mixing)  # what the freezing transform froze in this model
            rows.append(ModelRow(name, task, variant, trainable, frozen, len(report.frozen_modules)))
    for table in models_tables(rows):
        console.print(table)
