"""docs/architecture.md: linked, every path it names exists, every package is in its
table, and its worked examples run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "architecture.md"
PATH = re.compile(r"`((?:moeheads|tests|docs|benchmarks|recipes)/[\w./-]*)`")


def test_linked_from_readme_and_docs_home() -> None:
    assert "docs/architecture.md" in (ROOT / "README.md").read_text()
    assert "architecture.md" in (ROOT / "docs" / "index.md").read_text()
    assert "architecture.md" in (ROOT / "mkdocs.yml").read_text()


def test_every_named_path_exists() -> None:
    named = sorted(set(PATH.findall(DOC.read_text())))
    assert len(named) > 30
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_package_is_in_the_table() -> None:
    text = DOC.read_text()
    packages = sorted(p.parent.name for p in (ROOT / "moeheads").glob("*/__init__.py"))
    absent = [p for p in packages if f"`moeheads/{p}/`" not in text]
    assert not absent, f"packages missing from docs/architecture.md: {absent}"


def test_worked_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 5
    # a fresh interpreter: the examples register components in the global registries
    result = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
