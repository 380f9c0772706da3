"""The leaderboard generator on real result files: tiny saved models evaluated by the real harnesses."""

from __future__ import annotations

import dataclasses
import re
import shutil
import statistics
from collections.abc import Callable
from itertools import takewhile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from randmix_bench import claims, figures, leaderboard, verdicts
from randmix_bench.claims import Verdict
from randmix_bench.cli import app
from randmix_bench.entries import LeaderboardError, load_entries
from randmix_bench.figures import FIGURES_FOLDER
from randmix_bench.files import sha256
from randmix_bench.findings import FINDINGS_NAME, UNDECLARED, render_findings
from randmix_bench.leaderboard import MARKER_END, MARKER_START
from randmix_bench.markdown import escape
from randmix_bench.rankings import NOT_RANKED
from randmix_bench.result_files import read_result
from randmix_bench.results import SweepPoint
from randmix_bench.robustness import EvalOptions, evaluate
from randmix_bench.shuffle_eval import evaluate_runs
from randmix_bench.threat import ThreatModel
from randmix_bench.vocab import AAAttack, Attack

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

# (entry name, mixing, seed): two `full` seeds, so the comparison has a seed spread.
CLASSIFIERS = [("full-s0", "full", 0), ("full-s1", "full", 1), ("chans-s0", "chans", 0), ("space-s0", "space", 0)]
UNCHECKED = {"space-s0"}  # left without a sanity report, so it is listed but not ranked
N_EXAMPLES = 48
PASSED_SANITY = {"passed": True, "large_eps": 0.5, "large_eps_robust_acc": 0.0, "notes": ["set by the test"]}


def build_board(root: Path, save_classifier: Callable[..., Path], save_unshuffler: Callable[..., Path],
                edit_result: Callable[[Path, dict], None]) -> Path:
    """``root/synthetic/{Linf,L2,shuffle}/``: every number in it measured by the real harnesses."""
    linf = root / "synthetic" / "Linf"
    attack = EvalOptions(attack=Attack.APGD_CE, threat=ThreatModel.parse("Linf", "8/255"), n_examples=N_EXAMPLES,
                         n_iter=3, batch_size=N_EXAMPLES, device="cpu")
    for name, mixing, seed in CLASSIFIERS:
        ckpt = save_classifier(linf / f"{name}.safetensors", mixing, seed)
        evaluate(ckpt, "synthetic", dataclasses.replace(attack, name=name, out=linf / f"{name}.json"))
        if name not in UNCHECKED:  # a real --sanity run on an untrained model fails (AutoAttack flags its zero
            # gradients too); the board needs ranked rows, so these are marked checked by hand
            edit_result(linf / f"{name}.json", {"randmix.sanity": PASSED_SANITY, "randmix.autoattack_flags": [],
                                          "unreliable": False})
    evaluate(linf / "chans-s0.safetensors", "synthetic",
             dataclasses.replace(attack, threat=ThreatModel.parse("L2", "0.5"), name="chans-s0",
                                 out=root / "synthetic" / "L2" / "chans-s0.json"))
    shuffle = root / "synthetic" / "shuffle"
    evaluate_runs([save_unshuffler(shuffle / "unshuffle-chans", "chans")], shuffle, n_examples=32, grid_images=2)
    return root


@pytest.fixture(scope="module")
def board_template(tmp_path_factory: pytest.TempPathFactory, save_classifier: Callable[..., Path],
                   save_unshuffler: Callable[..., Path], edit_result: Callable[[Path, dict], None]) -> Path:
    return build_board(tmp_path_factory.mktemp("board") / "leaderboards", save_classifier, save_unshuffler, edit_result)


@pytest.fixture()
def board(board_template: Path, tmp_path: Path) -> Path:
    """A private copy, free to edit."""
    return Path(shutil.copytree(board_template, tmp_path / "leaderboards"))


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """Body rows of the first table under the first line starting with ``heading``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))])  # GFM: \| is text
        elif table:
            break
    return table[2:]


def test_empty_folder_says_so(tmp_path: Path) -> None:
    text = leaderboard.pages(tmp_path)[tmp_path / "README.md"]
    assert "**No results yet.**" in text
    assert "No robustness results yet." in text and "No pixel-shuffle results yet." in text
    assert "Claims 1 and 2: no data yet" in text and "Claim 3: no data yet" in text
    assert "| ---" not in text  # no table without data


def test_a_folder_that_is_no_leaderboard_is_refused_but_one_emptied_of_results_is_regenerated(tmp_path: Path) -> None:
    """A mistyped --dir (no result, no generated page) gets nothing written; a leaderboard whose results were all
    removed still gets its pages back to 'no results'."""
    stranger = tmp_path / "etc"
    stranger.mkdir()
    for look in (leaderboard.write, leaderboard.stale):
        with pytest.raises(LeaderboardError, match="holds no result files and no page randmix leaderboard generated"):
            look(stranger)
    assert list(stranger.iterdir()) == []
    (stranger / "README.md").symlink_to(tmp_path / "elsewhere.md")
    with pytest.raises(LeaderboardError, match="README.md is a symlink; .* remove the link"):
        leaderboard.write(stranger)
    (stranger / "README.md").unlink()

    foreign = tmp_path / "project"  # a project's JSON files, and a folder named like one: one line for them all
    for name in ("package.json", "tsconfig.json", "x.json/"):
        path = foreign / "sub" / name.rstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if name.endswith("/") else path.write_text('{"name": "x"}')
    with pytest.raises(LeaderboardError, match=r"^none of the 3 JSON files under .*project is a randmix result "
                                               r"\(the first: .*package.json: .*\); name the folder of result files$"):
        leaderboard.write(foreign)
    (foreign / "sub" / "entry.json").write_text('{"randmix": {"dataset": "x"}}')  # a damaged result: list them all
    with pytest.raises(LeaderboardError, match=r"^4 bad result file\(s\):\n") as caught:
        leaderboard.write(foreign)
    assert "x.json is not a regular file" in str(caught.value) and "entry.json" in str(caught.value)
    assert sorted(p.name for p in (foreign / "sub").iterdir()) == ["entry.json", "package.json", "tsconfig.json",
                                                                   "x.json"]

    emptied = tmp_path / "leaderboards"
    emptied.mkdir()
    (emptied / "README.md").write_text(leaderboard.pages(emptied)[emptied / "README.md"].replace("No results", "Old"))
    assert leaderboard.write(emptied) == [emptied / "README.md", emptied / FINDINGS_NAME]
    assert "**No results yet.**" in (emptied / "README.md").read_text()


def test_robustness_table_is_sorted_like_robustbench(board: Path) -> None:
    text = leaderboard.pages(board)[board / "README.md"]
    rows = table_rows(text, "### synthetic · Linf · eps 8/255")
    results = [read_result(p) for p in sorted((board / "synthetic" / "Linf").glob("*.json"))]
    ranked = [r for r in results if r.name not in UNCHECKED]
    expected = sorted(ranked, key=lambda r: (-float(r.autoattack_acc), -float(r.clean_acc), r.name))
    assert [r[1] for r in rows] == [r.name for r in expected]
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(ranked) + 1)]
    for row, r in zip(rows, expected, strict=True):
        assert row[2] == escape("randmix_convmixer_tiny") and row[4:7] == [r.clean_acc, r.autoattack_acc, "8/255"]
        assert row[7] == f"{r.randmix.params_trainable:,} / {r.randmix.params_frozen:,}"
        assert row[8] == str(N_EXAMPLES) and row[9] == "AA custom: apgd-ce (3 iter)"


def test_each_attack_set_is_ranked_on_its_own_standard_first(board: Path,
                                                             edit_result: Callable[[Path, dict], None]) -> None:
    """A cheaper custom set's robust accuracy is an upper bound: ranked beside AutoAttack standard's, a weaker
    attack would put its entry above a stronger attack's. Each set gets its own ranks, RobustBench's first."""
    edit_result(board / "synthetic" / "Linf" / "full-s1.json",
                {"randmix.attack.attack": "autoattack", "randmix.attack.version": "standard"})
    text = leaderboard.pages(board)[board / "README.md"]
    where = "### synthetic · Linf · eps 8/255"
    assert [line for line in text.splitlines() if line.startswith(where)] == [
        f"{where} · AA standard", f"{where} · AA custom: apgd-ce (3 iter)", f"{where} · not ranked"]
    assert [r[:2] + r[-2:-1] for r in table_rows(text, f"{where} · AA standard")] == [["1", "full-s1", "AA standard"]]
    custom = table_rows(text, f"{where} · AA custom")
    assert [r[0] for r in custom] == ["1", "2"] and sorted(r[1] for r in custom) == ["chans-s0", "full-s0"]
    assert {r[-2] for r in custom} == {"AA custom: apgd-ce (3 iter)"}
    after = text.split(f"{where} · AA standard", 1)[1].splitlines()
    group = list(takewhile(lambda line: line.startswith(where) or not line.startswith("#"), after))  # its sections
    assert [line.startswith(f"**{NOT_RANKED}**") for line in group].count(True) == 1  # listed once
    apart = text.split(f"{where} · not ranked")[1]  # under its own heading, after both rankings
    assert table_rows(apart, f"**{NOT_RANKED}**")[0][0] == "space-s0"


def test_unchecked_entries_are_listed_apart_with_the_reason(board: Path) -> None:
    text = leaderboard.pages(board)[board / "README.md"]
    linf = text.split("### synthetic · Linf · eps 8/255 · not ranked")[1].split("###")[0]
    (row,) = table_rows(linf, f"**{NOT_RANKED}**")
    assert row[0] == "space-s0" and row[-1] == "unchecked: no sanity report (randmix eval --sanity)"
    l2 = text.split("### synthetic · L2 · eps 0.5\n")[1].split("##")[0]
    assert "No ranked entries" in l2
    l2_apart = text.split("### synthetic · L2 · eps 0.5 · not ranked")[1].split("##")[0]
    assert table_rows(l2_apart, f"**{NOT_RANKED}**")[0][0] == "chans-s0"


def test_a_clean_only_result_feeds_claim_1_and_no_ranking(board: Path, save_classifier: Callable[..., Path]) -> None:
    """The medium tier measures `space` without an attack (claim 1 needs its clean accuracy only): nothing was
    attacked, so nothing can be masked and no sanity report is due. It counts for claim 1, is listed apart from the
    ranking (its robust number is its clean one) and feeds no robust-accuracy table."""
    before = verdicts.evaluate(e.result for e in load_entries(board))
    linf = board / "synthetic" / "Linf"
    ckpt = save_classifier(linf / "space-s7.safetensors", "space", 7)
    evaluate(ckpt, "synthetic", EvalOptions(attack=Attack.NONE, n_examples=N_EXAMPLES, device="cpu",
                                            threat=ThreatModel.parse("Linf", "8/255"), out=linf / "space-s7.json"))
    result = read_result(linf / "space-s7.json")
    assert claims.clean_trusted(result) and claims.why_untrusted(result) == "clean accuracy only: no attack was run"
    after = verdicts.evaluate(e.result for e in load_entries(board))

    def space_runs(families: list[claims.Family], claim: str) -> list[int]:
        return [c.runs[c.second == "space"] for f in families if f.claim == claim for c in f.rows
                if "space" in (c.first, c.second)]

    assert space_runs(before, "1") == [] and space_runs(after, "1") and set(space_runs(after, "1")) == {1}
    assert [repr(f) for f in after if f.claim == "2"] == [repr(f) for f in before if f.claim == "2"]  # nan != nan
    text = leaderboard.pages(board)[board / "README.md"]
    rows = table_rows(text.split("### synthetic · Linf · eps 8/255 · not ranked")[1], f"**{NOT_RANKED}**")
    assert ["space-s7", "clean accuracy only: no attack was run"] in [[r[0], r[-1]] for r in rows]


@pytest.mark.parametrize(("change", "reason"), [
    ({"randmix.sanity": {**PASSED_SANITY, "passed": False}}, "sanity checks failed"),
    ({"randmix.sanity": PASSED_SANITY, "unreliable": True}, "marked unreliable"),
    ({"randmix.sanity": PASSED_SANITY, "randmix.autoattack_flags": ["apgd-ce improved robust accuracy"]},
     "AutoAttack flagged it: apgd-ce improved robust accuracy"),
    ({"randmix.sanity": {**PASSED_SANITY, "autoattack_flags": ["square broke more points"]}},
     "AutoAttack flagged it: square broke more points"),
    ({"randmix.sanity": None, "randmix.autoattack_flags": ["apgd-ce broke no point"], "unreliable": True},  # every one
     "AutoAttack flagged it: apgd-ce broke no point; unchecked: no sanity report (randmix eval --sanity); "
     "marked unreliable"),
])
def test_flagged_entries_are_not_ranked_and_feed_no_verdict(board: Path, change: dict, reason: str,
                                                            edit_result: Callable[[Path, dict], None]) -> None:
    path = board / "synthetic" / "Linf" / "chans-s0.json"
    edit_result(path, change)
    text = leaderboard.pages(board)[board / "README.md"]
    linf = text.split("### synthetic · Linf · eps 8/255")[1].split("###")[0]
    assert "chans-s0" not in [r[1] for r in table_rows(linf, "|")]
    apart = text.split("### synthetic · Linf · eps 8/255 · not ranked")[1]
    assert ["chans-s0", reason] in [[r[0], r[-1]] for r in table_rows(apart, f"**{NOT_RANKED}**")]
    families = verdicts.evaluate(e.result for e in load_entries(board))
    assert all("chans" not in (r.first, r.second) for f in families if f.claim != "3" for r in f.rows)


def test_checkpoint_links_resolve_from_the_markdown(board: Path) -> None:
    text = leaderboard.pages(board)[board / "README.md"]
    links = [cell for line in text.splitlines() if line.startswith("| ") for cell in line.split("|") if "](" in cell]
    assert len(links) == len(CLASSIFIERS) + 2
    for cell in links:
        sha, target = cell.strip()[1:-1].split("](")
        path = board / target
        assert path.is_file() and sha256(path).startswith(sha)


def test_shuffle_table_reports_psnr_ssim_and_the_scrambled_baseline(board: Path) -> None:
    text = leaderboard.pages(board)[board / "README.md"]
    (row,) = table_rows(text, "## Pixel un-shuffling")
    r = read_result(board / "synthetic" / "shuffle" / "unshuffle-chans.json")
    assert row[:6] == ["synthetic", escape("unshuffle-chans"), escape("randmix_unshuffler_tiny"), "chans",
                       f"{r.psnr:.2f}", f"{r.ssim:.4f}"]
    assert row[6:8] == [f"{r.identity_psnr:.2f} / {r.identity_ssim:.4f}",
                        f"{r.mean_image_psnr:.2f} / {r.mean_image_ssim:.4f}"]
    ssim, psnr = [f for f in verdicts.evaluate(e.result for e in load_entries(board)) if f.claim == "3"]
    assert ssim.checks[0].verdict is Verdict.INSUFFICIENT_RUNS and ssim.rows == psnr.rows == ()  # one variant
    assert ssim.scale.training == f"{r.loss} loss, {r.epochs:g} epochs" and ssim.scale.seeds == (1, 1)
    findings_md = leaderboard.pages(board)[board / FINDINGS_NAME]
    assert "- `chans` un-shuffling works on synthetic: **insufficient runs**" in findings_md
    assert f"Not listed: {UNDECLARED} (their tables" in text  # no tier published this board's entries


def test_comparison_is_computed_from_the_entries(board: Path) -> None:
    families = verdicts.evaluate(e.result for e in load_entries(board))
    # claim 1 reads the whole-test-set accuracy the evaluation recorded, not the attacked subset's
    full = [read_result(board / "synthetic" / "Linf" / f"full-s{s}.json").randmix.clean_acc_full_test for s in (0, 1)]
    chans = read_result(board / "synthetic" / "Linf" / "chans-s0.json").randmix.clean_acc_full_test
    assert None not in full and chans is not None
    mean = sum(full) / 2
    std = abs(full[0] - full[1]) / 2**0.5
    (clean,) = [f for f in families if f.claim == "1"]
    (near,) = clean.rows  # space-s0 is unchecked: it feeds no verdict
    assert (clean.scale.model, clean.scale.dataset) == ("randmix_convmixer_tiny", "synthetic")
    assert clean.scale.seeds == (1, 2)
    assert (near.first, near.second, near.runs) == ("full", "chans", (2, 1))
    assert near.means == pytest.approx((100 * mean, 100 * chans)) and near.spreads[1] is None
    assert near.spreads[0] == pytest.approx(100 * std)
    assert near.verdict is Verdict.INSUFFICIENT_RUNS and clean.checks[0].verdict is Verdict.INSUFFICIENT_RUNS
    setting = "Linf 8/255, AA custom: apgd-ce (3 iter)"
    (robust,) = [f for f in families if f.scale.setting == setting]
    assert [(r.first, r.second, r.verdict) for r in robust.rows] == [("chans", "full", Verdict.INSUFFICIENT_RUNS)]
    (section,) = [s for s in leaderboard.pages(board)[board / FINDINGS_NAME].split("\n### ")
                  if f"{escape(setting)} · n = {N_EXAMPLES} points · 1–2 seeds per variant\n" in s]
    (pair,) = table_rows(f"### {section}", "###")  # no tier published these: no direction a verdict could take
    assert pair[0] == "`chans` − `full`" and pair[-1] == "**insufficient runs**"


def test_output_is_deterministic_and_location_independent(board: Path, tmp_path: Path) -> None:
    first = leaderboard.pages(board)[board / "README.md"]
    assert leaderboard.pages(board)[board / "README.md"] == first
    moved = Path(shutil.copytree(board, tmp_path / "elsewhere" / "lb"))
    assert leaderboard.pages(moved)[moved / "README.md"] == first


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
        leaderboard.pages(board, readme)


def test_the_default_readme_is_the_one_beside_the_folder_never_the_current_one(board: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`randmix leaderboard --dir elsewhere` run from a project used to rewrite that project's README section with
    elsewhere's tables (and links to it); the default README is now the one in --dir's parent folder."""
    project = tmp_path / "project"
    project.mkdir()
    ours = f"# Ours\n{MARKER_START}\nour tables\n{MARKER_END}\n"
    (project / "README.md").write_text(ours)
    (tmp_path / "README.md").write_text(f"# Beside the board\n{MARKER_START}\nold\n{MARKER_END}\n")
    monkeypatch.chdir(project)
    result = runner.invoke(app, ["leaderboard", "--dir", str(board)])
    assert result.exit_code == 0, result.output
    assert (project / "README.md").read_text() == ours
    assert "5 robustness and 1 pixel-shuffle result(s)" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("text", [
    f"{MARKER_START}\nold\n",  # end missing: the rest of the README would be swallowed
    f"old\n{MARKER_END}\n",
    f"{MARKER_END}\nold\n{MARKER_START}\n",  # reversed
    f"{MARKER_START}\na\n{MARKER_END}\n{MARKER_START}\nb\n{MARKER_END}\n",  # duplicated: would grow on every run
])
def test_damaged_readme_markers_are_an_error(board: Path, tmp_path: Path, text: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(LeaderboardError, match="damaged leaderboard markers"):
        leaderboard.write(board, readme)
    assert readme.read_text() == text and not (board / "README.md").exists()


HOSTILE = (f"{MARKER_END} [x](http://evil) ![i](http://evil/i.png) <img src=x onerror=alert(1)> **b** | "
           "www.evil.com a@b.c")


def test_free_text_renders_escaped(board: Path, tmp_path: Path, edit_result: Callable[[Path, dict], None]) -> None:
    """A result's free text cannot inject links, images, HTML, table cells or the README's markers."""
    path = board / "synthetic" / "Linf" / "chans-s0.json"  # (attack names are a vocabulary now: refused on read)
    edit_result(path, {"name": HOSTILE})
    shuffle = board / "synthetic" / "shuffle" / "unshuffle-chans.json"
    edit_result(shuffle, {"name": HOSTILE, "model": HOSTILE})
    readme = tmp_path / "README.md"
    readme.write_text(f"top\n{MARKER_START}\n{MARKER_END}\nbottom\n")
    leaderboard.write(board, readme)
    for text in (readme.read_text(), (board / "README.md").read_text()):
        assert text.count(MARKER_END) == (1 if MARKER_START in text else 0)
        assert not re.search(r"(?<!\\)\]\(http", text)  # no link or image: every ] from the file is \]
        for raw in ("<img", "**b**", "http://", "www.evil", "a@b", " | www"):  # HTML, emphasis, autolinks, cells
            assert raw not in text, raw
    board_text = (board / "README.md").read_text()
    assert escape(HOSTILE) in board_text and board_text.count("<!--") == 1  # only the generated-file comment
    assert leaderboard.stale(board, readme) == []  # regenerating is stable: the section did not grow
    rows = table_rows(board_text, "### synthetic · Linf · eps 8/255")
    assert {len(r) for r in rows} == {11}  # the | in the name did not add a cell
    edit_result(path, {"randmix.attack.version": "custom", "randmix.attack.attacks": [HOSTILE]})
    with pytest.raises(LeaderboardError, match="randmix.attack.attacks"):  # an attack name is never free text
        leaderboard.write(board, readme)


@pytest.mark.parametrize(("file", "change", "field"), [
    ("Linf/chans-s0.json", {"randmix.clean_acc": "high"}, "randmix.clean_acc"),
    ("Linf/full-s1.json", {"eps": None}, "eps"),
    ("Linf/space-s0.json", {"randmix.threat_model": "L2"}, "randmix.threat_model"),
    ("Linf/full-s0.json", {"randmix.checkpoint.path": "gone.safetensors"}, "randmix.checkpoint.path"),
    ("shuffle/unshuffle-chans.json", {"psnr": None}, "psnr"),
    ("shuffle/unshuffle-chans.json", {"ssim": float("nan")}, "ssim"),
    ("Linf/chans-s0.json", {"autoattack_acc": "99.00"}, "autoattack_acc"),
    ("Linf/chans-s0.json", {"randmix.robust_acc": float("inf")}, "randmix.robust_acc"),
    ("Linf/chans-s0.json", {"randmix.clean_acc_full_test": 1.2}, "randmix.clean_acc_full_test"),
    ("Linf/full-s0.json", {"clean_acc": "120.00", "randmix.clean_acc": 1.2}, "clean_acc"),
    ("Linf/full-s0.json", {"randmix.per_attack_robust_acc": {"apgd-ce": 0.99}}, "randmix.per_attack_robust_acc"),
    ("Linf/full-s0.json", {"randmix.eps_value": 0}, "randmix.eps_value"),
])
def test_a_bad_entry_fails_the_command_naming_file_and_field(board: Path, file: str, change: dict, field: str,
                                                             edit_result: Callable[[Path, dict], None]) -> None:
    path = board / "synthetic" / file
    edit_result(path, change)
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


# ------------------------------------------------------------------------------------------ figures


def test_robustness_curves_average_ranked_runs_per_eps(board: Path) -> None:
    """One chart per model/dataset/threat model/attack; a variant's point is the mean and sd of its seeds;
    unranked entries draw nothing."""
    entries = [e for e in load_entries(board) if e.is_robustness]
    (chart,) = [c for c in figures.curves(e.robustness for e in entries) if "Linf" in c.title]
    series = {s.variant: s for s in chart.series}
    assert set(series) == {"full", "chans"}  # space-s0 is unchecked, so not ranked
    full = [e.robustness for e in entries if e.randmix.mixing == "full" and e.randmix.threat_model == "Linf"]
    clean, headline = series["full"].points
    assert (clean.eps, clean.runs, headline.eps, headline.runs) == ("0", 2, "8/255", 2)
    robust = [float(r.autoattack_acc) for r in full]
    assert headline.mean == pytest.approx(statistics.fmean(robust))
    assert headline.spread == pytest.approx(statistics.stdev(robust))
    assert series["chans"].points[1].spread is None  # one run: no spread to draw


def test_a_sweep_with_cheaper_attacks_is_marked_at_its_eps(board: Path) -> None:
    """The medium tier sweeps with APGD-CE alone around an APGD-CE + APGD-T headline: the chart says so at those
    eps (an upper bound on what the headline attacks would leave), and not at the headline eps."""
    (entry,) = [e for e in load_entries(board) if e.is_robustness and e.result.name == "full-s0"
                and e.randmix.threat_model == "Linf"]
    r = entry.robustness
    rb = r.randmix
    sweep = [SweepPoint(eps="1/255", eps_value=1 / 255, robust_acc=0.9, attacks=[AAAttack.APGD_CE]),
             SweepPoint(eps=r.eps, eps_value=rb.eps_value, robust_acc=float(r.autoattack_acc) / 100)]
    (chart,) = figures.curves([r.model_copy(update={"randmix": rb.model_copy(update={"sweep": sweep})})])
    points = {p.eps: p for p in chart.series[0].points}
    assert points["1/255"].attacks == "apgd-ce" and points[r.eps].attacks is None and points["0"].attacks is None
    assert figures.curve_stem(r) == chart.stem


def test_charts_are_drawn_linked_and_checked_by_their_data(board: Path) -> None:
    """`randmix leaderboard` draws every chart and links it; --check compares the data fingerprint each PNG
    carries, so a picture swapped by hand or left over from removed results is stale."""
    leaderboard.write(board)
    charts = leaderboard.charts(board)
    assert charts and all(figures.read_fingerprint(p) == figures.fingerprint(c) for p, c in charts.items())
    markdown = (board / "README.md").read_text()
    for path in charts:
        assert f"]({path.relative_to(board).as_posix()})" in markdown
    assert "![unshuffle-chans grid](" not in markdown and "synthetic/shuffle/grid.png" in markdown
    assert leaderboard.stale(board) == []

    (linf_chart,) = [p for p, c in charts.items() if "Linf" in c.title]
    stray = board / FIGURES_FOLDER / "old.png"
    shutil.copy(linf_chart, stray)
    figures.draw(dataclasses.replace(charts[linf_chart], title="edited by hand"), linf_chart)  # a chart of other data
    assert leaderboard.stale(board) == [linf_chart, stray]
    assert runner.invoke(app, ["leaderboard", "--dir", str(board), "--readme", str(board / "absent.md"),
                               "--check"]).exit_code == 1
    assert set(leaderboard.write(board)) == {linf_chart, stray} and not stray.exists()
    assert leaderboard.stale(board) == []


def test_findings_say_each_claims_verdicts_plainly_with_where_they_were_measured(board: Path) -> None:
    """FINDINGS.md is generated beside the tables: one table per study and claim with its scale in the heading,
    every pair's verdict, a paragraph in plain words, and the devices, datasets and points the numbers came from."""
    entries = load_entries(board)
    findings = leaderboard.pages(board)[board / FINDINGS_NAME]
    for number in claims.RULES:
        assert f"## Claim {number}" in findings
    for f in verdicts.evaluate(e.result for e in entries):
        assert escape(f.scale.label()) in findings
        for r in f.rows:
            assert f"**{r.verdict.value}**" in findings
    assert "In plain words: " in findings
    for number in claims.RULES:  # each claim says what its tiers cannot settle, whatever they found
        claim = findings[findings.index(f"## Claim {number}"):]
        assert f"What only the paper's scale could settle: {claims.PAPER_SCALE_ONLY[number]}" in claim.split("###")[0]
    assert "- Devices: cpu (" in findings and "test points per entry: 32, 48" in findings
    assert "insufficient runs" in findings  # one or two seeds per variant here: no test is run
    claim2 = findings[findings.index("## Claim 2"):findings.index("## Claim 3")]
    for chart in figures.curves(e.robustness for e in entries if e.is_robustness):  # the eps chart beside its table
        assert claim2.count(f"]({FIGURES_FOLDER}/{chart.stem}.png)") == 1
    plain = next(line for line in findings.splitlines() if line.startswith("In plain words: "))
    assert "every pair untested, insufficient runs (3 runs per variant are needed)" in plain
    assert "no significant difference" not in plain  # an untested table never reads as a tested null


def test_masking_controls_are_shown_beside_the_verdicts(board: Path) -> None:
    """A real transfer control (APGD-CE examples made on chans-s0, judged on full-s0) appears in FINDINGS.md's
    masking section, compared point by point with full-s0's white-box outcomes."""
    linf = board / "synthetic" / "Linf"
    evaluate(linf / "full-s0.safetensors", "synthetic",
             EvalOptions(attack=Attack.TRANSFER, transfer_from=linf / "chans-s0.safetensors",
                         n_examples=N_EXAMPLES, n_iter=3, batch_size=N_EXAMPLES, device="cpu",
                         name="full-s0-transfer", out=linf / "full-s0-transfer.json"))
    entries = load_entries(board)
    findings = render_findings(entries)
    [row] = table_rows(findings, "## Gradient-masking controls")
    whitebox = next(e.robustness for e in entries if e.robustness.name == "full-s0" if e.is_robustness)
    assert row[:3] == ["`full-s0`", "transfer", str(N_EXAMPLES)]
    assert float(row[3]) == pytest.approx(100 * whitebox.randmix.robust_acc, abs=0.05)
    # and beside the verdict it bears on: under full-s0's robust-accuracy table, before the next table
    table_of_full = next(f for f in verdicts.evaluate(e.result for e in entries)
                         if f.claim == "2" and verdicts.robust_table(whitebox)[4] == f.scale.setting)
    after = findings.split(escape(table_of_full.scale.label()), 1)[1].split("\n### ", 1)[0]
    assert table_rows(after, "Gradient-masking controls of these entries") == [row]


def test_a_control_that_beats_the_white_box_attacks_flags_the_entry(robust_result: Callable[..., object]) -> None:
    from randmix_bench.masking import controls
    from randmix_bench.results import AttackConfig, Points

    def with_points(result, robust: list[int], attack: AttackConfig | None = None):  # type: ignore[no-untyped-def]
        rb = result.randmix.model_copy(update={
            "points": Points(indices=list(range(4)), clean=[1, 1, 1, 1], robust=robust),
            "checkpoint": result.randmix.checkpoint.model_copy(update={"weights_sha256": "w"}),
            **({"attack": attack} if attack else {})})
        return result.model_copy(update={"randmix": rb, "name": "control" if attack else "whitebox"})

    whitebox = with_points(robust_result("chans", 0, 1.0, 0.75, n=4), [1, 1, 1, 0])
    square = AttackConfig(attack="autoattack", version="custom", attacks=["square"], norm="Linf", eps=8 / 255)
    [ok] = controls([whitebox, with_points(robust_result("chans", 0, 1.0, 0.75, n=4), [1, 1, 0, 1], square)])
    assert (ok.kind, ok.missed, ok.flagged) == ("square", 1, False)  # one point each way: reported, not flagged
    [bad] = controls([whitebox, with_points(robust_result("chans", 0, 1.0, 0.5, n=4), [1, 0, 0, 0], square)])
    assert (bad.whitebox_robust, bad.control_robust, bad.missed, bad.flagged) == (3, 1, 2, True)


def test_the_cheaper_attack_set_is_checked_against_autoattack_standard(robust_result: Callable[..., object]) -> None:
    """A tier's APGD-CE + APGD-T number against AutoAttack standard on the same checkpoint and points: it agrees
    when standard leaves at most one point of accuracy fewer robust (2 of 200 here), else the entry is flagged."""
    from randmix_bench.masking import controls
    from randmix_bench.results import AttackConfig, Points

    cheaper = AttackConfig(attack="autoattack", version="custom", attacks=["apgd-ce", "apgd-t"], norm="Linf",
                           eps=8 / 255)
    standard = AttackConfig(attack="autoattack", version="standard", attacks=["apgd-ce", "apgd-t", "fab-t", "square"],
                            norm="Linf", eps=8 / 255)

    def entry(name: str, attack: AttackConfig, robust: int):  # type: ignore[no-untyped-def]
        result = robust_result("chans", 0, 1.0, robust / 200, n=200)
        rb = result.randmix.model_copy(update={
            "attack": attack, "points": Points(indices=list(range(200)), clean=[1] * 200,
                                               robust=[1] * robust + [0] * (200 - robust)),
            "checkpoint": result.randmix.checkpoint.model_copy(update={"weights_sha256": "w"})})
        return result.model_copy(update={"randmix": rb, "name": name})

    [agrees] = controls([entry("cheaper", cheaper, 100), entry("standard", standard, 98)])
    assert (agrees.entry, agrees.kind, agrees.missed, agrees.flagged) == ("cheaper", "AA standard", 2, False)
    [differs] = controls([entry("cheaper", cheaper, 100), entry("standard", standard, 97)])
    assert differs.flagged and differs.tolerance == 2
    assert controls([entry("a", standard, 100), entry("b", standard, 90)]) == []  # standard is not its own check
