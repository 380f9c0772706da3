"""The leaderboard generator on real result files: tiny saved models evaluated by the real harnesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator

import pytest
import torch
from typer.testing import CliRunner

from randmix_bench import leaderboard
from randmix_bench.checkpoint import save_checkpoint
from randmix_bench.cli import app
from randmix_bench.files import sha256
from randmix_bench.leaderboard import MARKER_END, MARKER_START, LeaderboardError, load_entries
from randmix_bench.models import create_model
from randmix_bench.quickstart import cpu_threads
from randmix_bench.recipes import TrainConfig
from randmix_bench.results import read_result
from randmix_bench.robustness import evaluate
from randmix_bench.shuffle import ShuffleTask, evaluate_runs, get_shuffle_recipe

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

# (entry name, mixing, seed): two `full` seeds, so the comparison has a seed spread.
CLASSIFIERS = [("full-s0", "full", 0), ("full-s1", "full", 1), ("chans-s0", "chans", 0), ("space-s0", "space", 0)]
N_EXAMPLES = 48


def save_classifier(path: Path, mixing: str, seed: int) -> Path:
    torch.manual_seed(seed)
    kwargs = {"mixing": mixing, "mixer_seed": seed, "in_chans": 3, "num_classes": 10}
    save_checkpoint(path, create_model("randmix_convmixer_tiny", **kwargs), "randmix_convmixer_tiny", kwargs)
    return path


def save_unshuffler(run: Path, mixing: str) -> Path:
    """An untrained tiny unshuffler saved as a run folder, as the trainer would save it after 0 epochs."""
    cfg: TrainConfig = get_shuffle_recipe("unshuffle-quick").override(mixing=mixing)
    task = ShuffleTask((32, 32), permutation_seed=0)
    torch.manual_seed(0)
    kwargs = {"mixing": mixing, "mixer_seed": 0, "in_chans": 3}
    extra = {"train": cfg.to_dict(), "task": task.config(), "epochs_done": 0}
    save_checkpoint(run / "checkpoint.safetensors", create_model(cfg.model, **kwargs), cfg.model, kwargs, extra=extra)
    return run


def build_board(root: Path) -> Path:
    """``root/synthetic/{Linf,L2,shuffle}/``: every number in it measured by the real harnesses."""
    linf = root / "synthetic" / "Linf"
    for name, mixing, seed in CLASSIFIERS:
        ckpt = save_classifier(linf / f"{name}.safetensors", mixing, seed)
        evaluate(ckpt, "synthetic", attack="apgd-ce", norm="Linf", eps="8/255", n_examples=N_EXAMPLES, n_iter=3,
                 batch_size=N_EXAMPLES, device="cpu", name=name, out=linf / f"{name}.json")
    evaluate(linf / "chans-s0.safetensors", "synthetic", attack="apgd-ce", norm="L2", eps="0.5", n_examples=N_EXAMPLES,
             n_iter=3, batch_size=N_EXAMPLES, device="cpu", name="chans-s0", out=root / "synthetic" / "L2" / "chans-s0.json")
    shuffle = root / "synthetic" / "shuffle"
    evaluate_runs([save_unshuffler(shuffle / "unshuffle-chans", "chans")], shuffle, n_examples=32, grid_images=2)
    return root


@pytest.fixture(scope="module", autouse=True)
def one_cpu_thread() -> Iterator[None]:
    """Tiny models: one thread is faster, and several threads on a busy CPU are many times slower."""
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def board_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_board(tmp_path_factory.mktemp("board") / "leaderboards")


@pytest.fixture()
def board(board_template: Path, tmp_path: Path) -> Path:
    """A private copy, free to edit."""
    return Path(shutil.copytree(board_template, tmp_path / "leaderboards"))


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """Body rows of the first table under ``heading``."""
    lines = markdown.splitlines()
    start = lines.index(heading)
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
        elif table:
            break
    return table[2:]


def test_empty_folder_says_so(tmp_path: Path) -> None:
    text = leaderboard.plan(tmp_path)[tmp_path / "README.md"]
    assert "**No results yet.**" in text
    assert "No robustness results yet." in text and "No pixel-shuffle results yet." in text
    assert "Claims 1 and 2: no data yet" in text and "Claim 3: no data yet" in text
    assert "| ---" not in text  # no table without data


def test_robustness_table_is_sorted_like_robustbench(board: Path) -> None:
    text = leaderboard.plan(board)[board / "README.md"]
    rows = table_rows(text, "### synthetic · Linf · eps 8/255")
    results = [read_result(p) for p in sorted((board / "synthetic" / "Linf").glob("*.json"))]
    expected = sorted(results, key=lambda r: (-float(r.autoattack_acc), -float(r.clean_acc), r.name))
    assert [r[1] for r in rows] == [r.name for r in expected]
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(results) + 1)]
    for row, r in zip(rows, expected):
        assert row[4:7] == [r.clean_acc, r.autoattack_acc, "8/255"]
        assert row[7] == f"{r.randmix.params_trainable:,} / {r.randmix.params_frozen:,}"
        assert row[8] == str(N_EXAMPLES) and row[9] == "AA custom: apgd-ce (3 iter)"
    assert table_rows(text, "### synthetic · L2 · eps 0.5")[0][1] == "chans-s0"


def test_checkpoint_links_resolve_from_the_markdown(board: Path) -> None:
    text = leaderboard.plan(board)[board / "README.md"]
    links = [cell for line in text.splitlines() if line.startswith("| ") for cell in line.split("|") if "](" in cell]
    assert len(links) == len(CLASSIFIERS) + 2
    for cell in links:
        sha, target = cell.strip()[1:-1].split("](")
        path = board / target
        assert path.is_file() and sha256(path).startswith(sha)


def test_shuffle_table_reports_psnr_ssim_and_the_scrambled_baseline(board: Path) -> None:
    text = leaderboard.plan(board)[board / "README.md"]
    (row,) = table_rows(text, "## Pixel un-shuffling")
    r = read_result(board / "synthetic" / "shuffle" / "unshuffle-chans.json")
    assert row[:6] == ["synthetic", "unshuffle-chans", "randmix_unshuffler_tiny", "chans", f"{r.psnr:.2f}", f"{r.ssim:.4f}"]
    assert row[6] == f"{r.identity_psnr:.2f} / {r.identity_ssim:.4f}"
    assert "- Claim 3 (works on synthetic): **" in text


def test_comparison_is_computed_from_the_entries(board: Path) -> None:
    text = leaderboard.plan(board)[board / "README.md"]
    rows = {r[0]: r for r in table_rows(text, "#### randmix_convmixer_tiny · synthetic")}
    assert list(rows) == ["`full`", "`chans`", "`space`"]
    full = [read_result(board / "synthetic" / "Linf" / f"full-s{s}.json").randmix.clean_acc for s in (0, 1)]
    chans = read_result(board / "synthetic" / "Linf" / "chans-s0.json").randmix.clean_acc
    mean = sum(full) / 2
    std = abs(full[0] - full[1]) / 2**0.5
    assert rows["`full`"][1:3] == ["2", f"{100 * mean:.2f} ± {100 * std:.2f}"]
    assert rows["`chans`"][1:3] == ["1", f"{100 * chans:.2f}"]
    verdict = "supported" if 100 * (mean - chans) <= leaderboard.NEARLY_PP else "not supported"
    assert f"- Claim 1 (`chans` ≈ `full`): **{verdict}**" in text
    setting = "Linf 8/255, AA custom: apgd-ce (3 iter)"
    assert f"- Claim 2 (`chans-smooth` more robust than `chans`, {setting}): no data yet" in text


def test_output_is_deterministic_and_location_independent(board: Path, tmp_path: Path) -> None:
    first = leaderboard.plan(board)[board / "README.md"]
    assert leaderboard.plan(board)[board / "README.md"] == first
    moved = Path(shutil.copytree(board, tmp_path / "elsewhere" / "lb"))
    assert leaderboard.plan(moved)[moved / "README.md"] == first


def test_check_fails_on_stale_markdown_and_names_the_file(board: Path) -> None:
    result = runner.invoke(app, ["leaderboard", "--dir", str(board), "--readme", str(board / "absent.md"), "--check"])
    assert result.exit_code == 1 and f"stale: {board / 'README.md'}" in result.output
    assert runner.invoke(app, ["leaderboard", "--dir", str(board), "--readme", str(board / "absent.md")]).exit_code == 0
    assert leaderboard.stale(board) == []
    check = ["leaderboard", "--dir", str(board), "--readme", str(board / "absent.md"), "--check"]
    assert runner.invoke(app, check).exit_code == 0
    shutil.rmtree(board / "synthetic" / "L2")  # an entry removed: the Markdown no longer matches
    result = runner.invoke(app, check)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_readme_section_is_replaced_between_markers_only(board: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n\nbefore\n{MARKER_START}\nold text\n{MARKER_END}\nafter\n")
    leaderboard.write(board, readme)
    text = readme.read_text()
    assert text.startswith("# Project\n\nbefore\n" + MARKER_START + "\n") and text.endswith(MARKER_END + "\nafter\n")
    assert "old text" not in text and "5 robustness and 1 pixel-shuffle result(s)" in text
    assert f"]({Path('leaderboards') / 'README.md'})" in text  # the link is relative to the README
    assert leaderboard.stale(board, readme) == []
    readme.write_text("# Project without markers\n")
    with pytest.raises(LeaderboardError, match="no <!-- leaderboard:start --> ... <!-- leaderboard:end --> markers"):
        leaderboard.plan(board, readme)


def _edit(path: Path, change: dict) -> None:
    data = json.loads(path.read_text())
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = data
        for p in parents:
            node = node[p]
        if value is None:
            del node[key]
        else:
            node[key] = value
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("file", "change", "field"), [
    ("Linf/chans-s0.json", {"randmix.clean_acc": "high"}, "randmix.clean_acc"),
    ("Linf/full-s1.json", {"eps": None}, "eps"),
    ("Linf/space-s0.json", {"randmix.threat_model": "L2"}, "randmix.threat_model"),
    ("Linf/full-s0.json", {"randmix.checkpoint.path": "gone.safetensors"}, "randmix.checkpoint.path"),
    ("shuffle/unshuffle-chans.json", {"psnr": None}, "psnr"),
])
def test_a_bad_entry_fails_the_command_naming_file_and_field(board: Path, file: str, change: dict, field: str) -> None:
    path = board / "synthetic" / file
    _edit(path, change)
    with pytest.raises(LeaderboardError) as info:
        load_entries(board)
    assert str(path) in str(info.value) and f"field '{field}'" in str(info.value)
    result = runner.invoke(app, ["leaderboard", "--dir", str(board), "--readme", str(board / "absent.md")])
    assert result.exit_code == 2 and str(path) in result.output and field in result.output
    assert not (board / "README.md").exists()


def test_unreadable_json_is_reported(board: Path) -> None:
    path = board / "synthetic" / "Linf" / "broken.json"
    path.write_text("{ not json")
    with pytest.raises(LeaderboardError, match="broken.json: not readable JSON"):
        load_entries(board)


def test_repository_leaderboard_markdown_is_up_to_date() -> None:
    """CI runs the tests: committed Markdown that `randmix leaderboard` would change fails here."""
    stale = leaderboard.stale(REPO / "leaderboards", REPO / "README.md")
    assert stale == [], f"stale: {', '.join(map(str, stale))}; run `randmix leaderboard`"
