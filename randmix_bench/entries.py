"""The result files under ``leaderboards/``, loaded and validated once: one :class:`Entry` per file.

Every ``*.json`` under the folder is validated (schema, folder layout, checkpoint present); one bad file
fails the whole load with its name and field, so an entry is never dropped silently; copies of one
checkpoint that label it as different runs are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from randmix_bench.errors import MissingError, RandmixError
from randmix_bench.result_files import (
    ForeignFileError,
    ResultError,
    checkpoint_field,
    read_result,
    resolve_checkpoint,
    resolve_ref,
)
from randmix_bench.results import CheckpointRef, RandmixBlock, Result, RobustnessResult, ShuffleResult

__all__ = ["Entry", "LeaderboardError", "LEADERBOARDS_NAME", "SHUFFLE_FOLDER", "load_entry", "load_entries"]

LEADERBOARDS_NAME = "leaderboards"
SHUFFLE_FOLDER = "shuffle"


class LeaderboardError(RandmixError):
    """Bad result files or a README with damaged markers: one line per problem, each naming its file."""


@dataclass(frozen=True)
class Entry:
    """One validated result file."""

    path: Path  # the JSON file
    rel: str  # its path relative to the leaderboards folder, posix, for messages and links
    result: Result
    checkpoint: Path  # real path, inside the leaderboards folder (see result_files.resolve_checkpoint)
    source: Path | None = None  # a transfer attack's source checkpoint, resolved the same way

    @property
    def checkpoint_ref(self) -> CheckpointRef:
        return checkpoint_field(self.result)[0]

    @property
    def run_key(self) -> str:
        """What identifies the run behind the entry: its checkpoint's weights digest (the file's sha256 on results
        written before it was recorded). Re-evaluations and copies of one checkpoint are one run, whatever their
        file names say; :func:`load_entries` refuses copies that label it differently."""
        ref = self.checkpoint_ref
        return ref.weights_sha256 or ref.sha256

    @property
    def labels(self) -> dict[str, object]:
        """What the entry says about its run: two entries of one checkpoint must say the same."""
        r = self.randmix if self.is_robustness else self.shuffle
        epochs = self.randmix.train_epochs if self.is_robustness else self.shuffle.epochs
        recipe = self.randmix.train_recipe if self.is_robustness else None
        return {"model": r.model, "mixing": str(r.mixing), "mixer_seed": r.mixer_seed, "smooth_sigma": r.smooth_sigma,
                "train_seed": r.train_seed, "train_recipe": recipe, "train_epochs": epochs}

    @property
    def is_robustness(self) -> bool:
        return isinstance(self.result, RobustnessResult)

    @property
    def robustness(self) -> RobustnessResult:
        return cast(RobustnessResult, self.result)

    @property
    def randmix(self) -> RandmixBlock:
        return self.robustness.randmix

    @property
    def shuffle(self) -> ShuffleResult:
        return cast(ShuffleResult, self.result)


def _layout_problem(rel_parts: tuple[str, ...], result: Result) -> str | None:
    """Why a file is in the wrong place for its content, or None: the folder decides the table it is
    listed under, so a mismatch would list it under the wrong dataset or threat model."""
    expected = "<dataset>/<Linf|L2|shuffle>/<name>.json"
    if len(rel_parts) != 3:
        return f"field '<path>': expected the layout {expected}"
    dataset, group, _ = rel_parts
    if isinstance(result, ShuffleResult):
        if group != SHUFFLE_FOLDER:
            return f"field 'track': a shuffle result must be under <dataset>/{SHUFFLE_FOLDER}/, not {group}/"
        if result.dataset != dataset:
            return f"field 'dataset': {result.dataset!r} does not match its folder {dataset!r}"
        return None
    if result.randmix.threat_model != group:
        return (f"field 'randmix.threat_model': {result.randmix.threat_model!r} does not match its folder "
                f"{group!r} ({expected})")
    if result.randmix.dataset != dataset:
        return f"field 'randmix.dataset': {result.randmix.dataset!r} does not match its folder {dataset!r}"
    return None


def load_entry(path: str | Path, root: str | Path | None = None) -> Entry:
    """One result file, validated, with its checkpoint inside ``root``; given the leaderboards ``root``,
    also its place in the ``<dataset>/<Linf|L2|shuffle>/`` layout. Without ``root``, the nearest folder
    above the file named ``leaderboards`` is the root, else the file's own folder. Raises ``ResultError``
    naming file and field."""
    path = Path(path)
    if root is not None and not (real := path.resolve()).is_relative_to(Path(root).resolve()):
        raise ResultError(f"{path}: a symlink to {real}, outside the leaderboards folder {root}; copy the result "
                          "itself there (as for checkpoints)")
    result = read_result(path)
    if root is not None:
        rel = path.relative_to(root)
        problem = _layout_problem(rel.parts, result)
        if problem:
            raise ResultError(f"{path}: {problem}")
    else:
        rel = path
        root = next((p for p in path.resolve().parents if p.name == LEADERBOARDS_NAME), path.parent)
    source = result.randmix.attack.source if isinstance(result, RobustnessResult) else None
    return Entry(path, rel.as_posix(), result, resolve_checkpoint(result, path, root),
                 None if source is None else resolve_ref(source, "randmix.attack.source", path, root))


def load_entries(root: str | Path) -> list[Entry]:
    """Every result under ``root``, validated, in path order; raises :class:`LeaderboardError` listing
    every bad file (with its field) rather than skipping any: one line for one bad file, and one line for a
    folder none of whose JSON files is a randmix result (a mistyped folder, not a damaged leaderboard)."""
    root = Path(root)
    if not root.is_dir():
        raise MissingError(f"leaderboards folder {root} does not exist; pass --dir with the folder of result files")
    entries: list[Entry] = []
    problems: list[str] = []
    foreign = 0
    for path in sorted(root.rglob("*.json")):
        try:
            entries.append(load_entry(path, root))
        except ResultError as e:
            problems.append(str(e))
            foreign += isinstance(e, ForeignFileError)
    if foreign > 1 and foreign == len(problems) and not entries:
        raise LeaderboardError(f"none of the {foreign} JSON files under {root} is a randmix result (the first: "
                               f"{problems[0]}); name the folder of result files")
    problems += _relabelled_runs(entries)
    if len(problems) == 1:
        raise LeaderboardError(problems[0])
    if problems:
        raise LeaderboardError(f"{len(problems)} bad result file(s):\n" + "\n".join(problems))
    return entries


def _relabelled_runs(entries: list[Entry]) -> list[str]:
    """One problem per entry that claims a checkpoint another entry claims (by weights digest or file sha256)
    with other labels (training seed, mixing, sigma, recipe...): a copied result relabelled as another run."""
    first: dict[tuple[str, str], Entry] = {}
    problems = []
    for e in entries:
        ref = e.checkpoint_ref
        for key in (("weights", ref.weights_sha256), ("file", ref.sha256)):
            if key[1] is None:
                continue
            earlier = first.setdefault((key[0], key[1]), e)
            differ = sorted(k for k, v in e.labels.items() if earlier.labels[k] != v)
            if differ:
                problems.append(f"{e.path}: claims the checkpoint of {earlier.rel} ({key[0]} sha256 {key[1][:12]}…) "
                                f"but labels it with another {', '.join(differ)}; one checkpoint is one run: remove "
                                "the relabelled copy")
                break
    return problems
