"""Markdown for the generated pages: free text from result files made inert, code spans, headings, tables.

Every cell is escaped unless it is a :class:`Markdown` value, i.e. Markdown this package generated itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Markdown", "escape", "code", "heading", "table", "relpath"]

_MARKDOWN = re.compile(r"([\\`*_\[\]#!|~])")
_AUTOLINK = re.compile(r"(?i)(://|www\.|@)")


class Markdown(str):
    """Markdown this package generated (a link, a code span): the one kind of cell not escaped."""


def escape(text: object) -> str:
    """Free text from a result file as inert Markdown and HTML: no emphasis, links, images, tables, HTML
    tags or comments (so never the README's markers), nor GFM's bare-URL and e-mail autolinks."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKDOWN.sub(r"\\\1", text)
    return _AUTOLINK.sub(lambda m: m.group(1).replace(":", "&#58;").replace(".", "&#46;").replace("@", "&#64;"), text)


def code(text: str) -> Markdown:
    """A variant or mixing name as a code span; only our own identifiers (no backticks) come here."""
    return Markdown(f"`{text}`")


def heading(level: str, *parts: object) -> str:
    return f"{level} " + " · ".join(escape(p) for p in parts)


def table(header: list[str], rows: Iterable[list[str]], right: Iterable[int] = ()) -> list[str]:
    right_aligned = set(right)
    align = ["---:" if i in right_aligned else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(c if isinstance(c, Markdown) else escape(c) for c in row) + " |" for row in rows]
    return lines


def relpath(path: Path, base: Path) -> str:
    """``path`` relative to ``base``, posix: the target of a link in a page that lives in ``base``."""
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
