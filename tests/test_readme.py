"""Every Python example in the README runs, as written, from the repository root (in a fresh interpreter)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_a_readme_python_example_runs(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_the_readme_shell_examples_that_are_cheap_run() -> None:
    for args in (["--version"], ["--help"], ["data", "list"], ["reproduce", "--tier", "small", "--dry-run"]):
        done = subprocess.run([sys.executable, "-m", "randmix_bench.cli", *args], cwd=REPO, capture_output=True,
                              text=True)
        assert done.returncode == 0, (args, done.stderr)
        assert f"randmix {' '.join(args)}" in (REPO / "README.md").read_text() or args == ["--help"]
