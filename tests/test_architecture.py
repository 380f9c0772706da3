"""The package's shape, read from its source (ARCHITECTURE.md describes it): modules stay small, the library never
imports the command line, and no two modules import each other, directly or through others."""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "randmix_bench"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes inside ``if TYPE_CHECKING:`` blocks: imports for annotations, never run."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            inside |= {id(n) for child in node.body for n in ast.walk(child)}
    return inside


def imports(name: str, type_checking: bool = False) -> set[str]:
    """The randmix_bench modules that module ``name`` imports, at its top or inside its functions; an import of a
    name from a package counts as an import of its submodule when there is one, else of the package."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = set() if type_checking else _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return {m for m in found if m in MODULES and m != name}


def test_the_checks_see_the_package() -> None:
    """The walk finds the modules and their imports (so the tests below cannot pass by finding nothing)."""
    assert {"randmix_bench.train", "randmix_bench.cli.app", "randmix_bench.robustness"} <= set(MODULES)
    assert "randmix_bench.run_folder" in imports("randmix_bench.train")
    assert "randmix_bench.shuffle_eval" in imports("randmix_bench.jobs")  # a function-level import counts
    assert "randmix_bench.jobs" not in imports("randmix_bench.cli.progress")  # a TYPE_CHECKING-only one does not
    assert "randmix_bench.jobs" in imports("randmix_bench.cli.progress", type_checking=True)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_limit(name: str) -> None:
    """One module per concept: a module past the limit does several jobs; split it by concern."""
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines (limit {MAX_LINES}): split it by concern"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if not m.startswith("randmix_bench.cli")))
def test_the_library_never_imports_the_command_line(name: str) -> None:
    """The command line sits on top: it imports the library, never the other way round (not even for types)."""
    upward = sorted(m for m in imports(name, type_checking=True) if m.startswith("randmix_bench.cli"))
    assert not upward, f"{name} imports {upward}"


def test_no_import_cycles() -> None:
    """No module imports itself through others (TYPE_CHECKING-only imports aside; importing a submodule is not
    counted as importing the package around it, whose ``__init__`` may re-export it)."""
    graph = {name: imports(name) for name in MODULES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _vocabulary() -> dict[str, str]:
    """Every value of ``vocab.py``'s str enums -> the enum that holds it."""
    from randmix_bench import vocab

    kinds = [c for c in vars(vocab).values() if isinstance(c, type) and issubclass(c, vocab.Choice)]
    return {m.value: kind.__name__ for kind in kinds if kind is not vocab.Choice for m in kind}


def _constants(node: ast.expr) -> list[str]:
    """The str constants a comparison operand holds: itself, or the items of a literal tuple, list or set."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for e in node.elts for v in _constants(e)]
    return []


def vocabulary_compared_as_text(source: str) -> list[str]:
    """``line: code`` for every comparison (``==``, ``!=``, ``in``, ``is``...) of an operand against a literal
    vocabulary value, e.g. ``norm == "Linf"`` or ``version in ("standard", "plus")``."""
    values = _vocabulary()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            hits = [v for side in (node.left, *node.comparators) for v in _constants(side) if v in values]
            if hits:
                found.append(f"{node.lineno}: {ast.unparse(node)} ({', '.join(f'{values[v]}: {v}' for v in hits)})")
    return found


def test_the_vocabulary_scan_finds_text_comparisons() -> None:
    """The scan below sees every shape of the mistake it is there to catch (and not a member comparison)."""
    source = ('a = norm == "Linf"\nb = "adamw" != cfg.optimizer\nc = version in ("standard", "plus")\n'
              'd = x not in ["none"]\ne = cfg.mixing is Mixing.CHANS\nf = name == "stem"\n')
    assert [hit.partition(":")[0] for hit in vocabulary_compared_as_text(source)] == ["1", "2", "3", "4"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_vocabulary_value_is_compared_as_text(name: str) -> None:
    """Names are parsed into ``vocab.py``'s enums where text arrives (the command line, a file reader, a recipe),
    and compared as members inside: a comparison with a literal such as ``"Linf"`` means a value travelled as
    text below the boundary, or a check that a typo in the literal would silently turn off."""
    found = vocabulary_compared_as_text(MODULES[name].read_text())
    assert not found, f"{MODULES[name]} compares vocabulary values as text: " + "; ".join(found)


def _readme_module_tree() -> str:
    text = (PACKAGE.parent / "README.md").read_text()
    start = text.index("```\nrandmix_bench/\n")
    return text[start:text.index("```", start + 3)]


MODULE_FILES = [p for p in MODULES.values() if p.name not in ("__init__.py", "__main__.py")]


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_the_readme_module_list_names_every_module(path: Path) -> None:
    """The README's module list names each module: by its file, by a glob line (``commands_*.py``, whose line names
    each command group), or by its folder's line when that says it holds one file each (``models/``)."""
    tree = _readme_module_tree()
    entries = dict(re.findall(r"^ +(\S+) +(.*(?:\n {19,}.*)*)", tree, re.MULTILINE))  # name -> its description
    folder = f"{path.parent.name}/"
    if path.name in entries:
        return
    globs = [(name, line) for name, line in entries.items() if "*" in name and fnmatch(path.name, name)]
    if globs:
        (name, line), = globs
        group = path.stem.removeprefix(name.split("*")[0])
        assert re.search(rf"\b{re.escape(group)}\b", line), f"{name} in README's module list does not name {group}"
        return
    assert "one file each" in entries.get(folder, ""), f"README's module list lacks {path.relative_to(PACKAGE)}"
