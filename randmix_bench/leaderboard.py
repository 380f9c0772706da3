"""``randmix leaderboard``: the generated files of the leaderboards folder, from its entries loaded once.

``leaderboards/README.md`` (:mod:`.rankings`), ``leaderboards/FINDINGS.md`` and the top README's marked section
(:mod:`.findings`), and the eps and training-loss charts under ``figures/`` (:mod:`.figures`): :func:`stale` says
which differ from what the entries give, :func:`write` regenerates them, replacing or removing only files this
command generated.
"""

from __future__ import annotations

import os
from pathlib import Path

from randmix_bench import figures
from randmix_bench.entries import Entry, LeaderboardError, load_entries
from randmix_bench.files import atomic_path, check_regular, read_regular
from randmix_bench.findings import FINDINGS_NAME, render_findings, render_summary
from randmix_bench.markdown import relpath
from randmix_bench.rankings import render_leaderboard

__all__ = ["MARKER_START", "MARKER_END", "pages", "charts", "stale", "write"]

MARKDOWN_NAME = "README.md"
MARKER_START = "<!-- leaderboard:start -->"
MARKER_END = "<!-- leaderboard:end -->"


def _replace_section(text: str, body: str, readme: Path) -> str:
    """The README with its marked section replaced; damaged markers are an error, never guessed around
    (a missing end would otherwise swallow the rest of the README, a duplicate grow it on every run)."""
    starts, ends = text.count(MARKER_START), text.count(MARKER_END)
    if starts == 0 and ends == 0:
        raise LeaderboardError(f"{readme}: no {MARKER_START} ... {MARKER_END} markers; add them where the "
                               "leaderboard summary should go")
    start, end = text.find(MARKER_START), text.find(MARKER_END)
    if starts != 1 or ends != 1 or end < start:
        raise LeaderboardError(f"{readme}: damaged leaderboard markers ({starts} {MARKER_START}, {ends} {MARKER_END}"
                               f"{', end before start' if starts == ends == 1 else ''}); leave exactly one of each, "
                               "start first")
    return text[: start + len(MARKER_START)] + "\n" + body + text[end:]


def _grids(entries: list[Entry]) -> list[Path]:
    """The grids the pixel-shuffle results name (``grid_png``, a file beside the result): any other PNG dropped into
    a shuffle folder (a user's picture, a FIFO, a link) would be shown as what a result's models reconstructed."""
    names = [(e.path.parent, e.shuffle.grid_png) for e in entries if not e.is_robustness and e.shuffle.grid_png]
    named = {folder / name for folder, name in names if Path(name).name == name and name != ".."}
    return sorted(p for p in named if p.is_file() and not p.is_symlink())


README_MAX_BYTES = 16 << 20  # a project README is kilobytes; anything this large is not one


def _read_readme(path: Path) -> str:
    """The README whose marked section is replaced: a regular UTF-8 file of a sane size, or a one-line error."""
    try:
        return read_regular(path, "--readme", README_MAX_BYTES).decode()
    except UnicodeDecodeError:
        raise LeaderboardError(f"--readme {path} is not UTF-8 text; pass the project's README.md") from None


def _pages(root: Path, entries: list[Entry], readme: str | Path | None) -> dict[Path, str]:
    target = root / MARKDOWN_NAME
    out = {target: render_leaderboard(entries, root, _grids(entries)), root / FINDINGS_NAME: render_findings(entries)}
    if readme is not None and (Path(readme).exists() or Path(readme).is_symlink()):  # a FIFO or folder: refused
        readme = Path(readme)
        summary = render_summary(entries, relpath(target, readme.parent))
        out[readme] = _replace_section(_read_readme(readme), summary, readme)
    return out


def _charts(root: Path, entries: list[Entry]) -> dict[Path, figures.Chart]:
    charts: list[figures.Chart] = [*figures.curves(e.robustness for e in entries if e.is_robustness),
                                   *figures.loss_charts(e.shuffle for e in entries if not e.is_robustness)]
    return {root / figures.FIGURES_FOLDER / f"{c.stem}.png": c for c in charts}


def pages(root: str | Path, readme: str | Path | None = None) -> dict[Path, str]:
    """The full text every generated file should have: ``<root>/README.md``, ``<root>/FINDINGS.md`` and, when
    ``readme`` exists, that file with its marked section replaced."""
    root = Path(root)
    return _pages(root, load_entries(root), readme)


def charts(root: str | Path) -> dict[Path, figures.Chart]:
    """The charts ``randmix leaderboard`` draws, by their path under ``<root>/figures/``."""
    root = Path(root)
    return _charts(root, load_entries(root))


def _stray_figures(root: Path, wanted: dict[Path, figures.Chart]) -> list[Path]:
    """Charts this command drew (they carry a fingerprint) that no result needs any more; other PNGs are the user's."""
    folder = root / figures.FIGURES_FOLDER
    if folder.is_symlink():
        return []
    return sorted(p for p in folder.glob("*.png")
                  if p not in wanted and not p.is_symlink() and figures.read_fingerprint(p) is not None)


def stale(root: str | Path, readme: str | Path | None = None) -> list[Path]:
    """Generated files that differ from what ``randmix leaderboard`` would write: Markdown by text, charts
    by the data fingerprint they carry, and charts no result needs any more."""
    root = Path(root)
    entries = _load_board(root)
    wanted = _charts(root, entries)
    return ([path for path, text in _pages(root, entries, readme).items()
             if _differs(path, text)]
            + [path for path, c in wanted.items() if figures.read_fingerprint(path) != figures.fingerprint(c)]
            + _stray_figures(root, wanted))


def _differs(path: Path, text: str) -> bool:
    """Whether ``path`` does not hold ``text``: anything but a regular file of a README's size differs unread (a
    FIFO would block, a huge file fill memory)."""
    return not path.is_file() or path.stat().st_size > README_MAX_BYTES or path.read_text() != text


GENERATED_MARK = "<!-- Generated by `randmix leaderboard`"
"""The first line of every Markdown file ``write`` owns (a chart carries its fingerprint instead)."""


def _load_board(root: Path) -> list[Entry]:
    """The entries of a leaderboards folder; a folder with none and no page this command generated is refused
    before anything is read or written beside it (a mistyped folder such as /etc, or its parent's README)."""
    entries = load_entries(root)
    if entries:
        return entries
    pages = [root / MARKDOWN_NAME, root / FINDINGS_NAME]
    for path in pages:
        if path.is_symlink():
            raise LeaderboardError(f"{path} is a symlink; randmix leaderboard replaces only files it generated: "
                                   "remove the link")
    if not any(path.is_file() and GENERATED_MARK in _head(path) for path in pages):
        raise LeaderboardError(f"{root} holds no result files and no page randmix leaderboard generated, so it is not "
                               "a leaderboards folder: name the folder that `randmix eval` and `randmix shuffle eval` "
                               "write their results into")
    return entries


def _check_ours(root: Path, texts: dict[Path, str], wanted: dict[Path, figures.Chart]) -> None:
    """Refuse, before anything is written, to replace or remove what ``randmix leaderboard`` did not generate: a
    README.md or FINDINGS.md without its mark, a chart path holding the user's own PNG, anything reached through
    a symlink (a figures folder linked elsewhere would have files deleted outside the leaderboards folder)."""
    owned = [p for p in texts if p.parent == root]  # the README given by --readme has markers instead
    folder = root / figures.FIGURES_FOLDER
    if folder.is_symlink():
        raise LeaderboardError(f"{folder} is a symlink (to {os.readlink(folder)}); randmix leaderboard writes its "
                               "charts only into a real folder: replace the link with a folder")
    for path in [*owned, *wanted]:
        if path.is_symlink():
            raise LeaderboardError(f"{path} is a symlink; randmix leaderboard replaces only files it generated: "
                                   "remove the link")
    for path in owned:
        if path.exists() and GENERATED_MARK not in _head(path):
            raise LeaderboardError(f"{path} was not generated by randmix leaderboard (no '{GENERATED_MARK}' line); "
                                   f"move it away or pass --dir a folder of result files only")
    for path in wanted:
        if path.exists() and figures.read_fingerprint(path) is None:
            raise LeaderboardError(f"{path} is not a chart randmix leaderboard drew; move it away (the chart goes "
                                   "there)")


def _head(path: Path) -> str:
    """The first 4 KB of a file, where the generated mark is; a FIFO or device there is refused, never read (a FIFO
    would block, a device never end)."""
    check_regular(path, "leaderboard file")
    with open(path, "rb") as f:
        return f.read(4096).decode(errors="replace")


def write(root: str | Path, readme: str | Path | None = None) -> list[Path]:
    """Regenerate the Markdown and the charts; returns the files that changed (or were removed). Only files this
    command generated are replaced or removed (:func:`_check_ours`); a PNG of the user's is never touched."""
    root = Path(root)
    entries = _load_board(root)
    texts, wanted = _pages(root, entries, readme), _charts(root, entries)
    _check_ours(root, texts, wanted)
    changed = []
    for path, text in texts.items():
        if _differs(path, text):
            with atomic_path(path) as tmp:
                tmp.write_text(text)
            changed.append(path)
    for path, curve in wanted.items():
        if figures.read_fingerprint(path) != figures.fingerprint(curve):
            path.parent.mkdir(parents=True, exist_ok=True)
            figures.draw(curve, path)
            changed.append(path)
    for path in _stray_figures(root, wanted):
        path.unlink()
        changed.append(path)
    return changed
