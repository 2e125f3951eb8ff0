"""The glibc allocator tuning: applied by the command line, never by the library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.recipes import tiny_recipe, write_recipe

PACKAGE = Path(__file__).parents[2] / "moeheads"

#: Whether training in a fresh interpreter set the process allocator (printed as the last line).
PROBE = """
import sys, yaml
import moeheads.runtime.allocator as allocator
{call}
print("applied", allocator.applied())
"""


def run_probe(call: str) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE.format(call=call)], capture_output=True,
                            text=True, timeout=300, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def test_only_the_allocator_module_calls_mallopt() -> None:
    callers = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
               if "mallopt" in p.read_text()]
    assert callers == ["runtime/allocator.py"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_library_training_leaves_the_allocator_alone(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "tiny.yaml",
                          tiny_recipe(tmp_path / "runs", trainer__epochs=1, monitor__knn_every=0))
    call = f"import moeheads; moeheads.run({str(recipe)!r})"
    assert run_probe(call) == "applied False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_the_run_command_tunes_the_allocator(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "tiny.yaml",
                          tiny_recipe(tmp_path / "runs", trainer__epochs=1, monitor__knn_every=0))
    call = ("from moeheads.cli import app\n"
            f"app(['run', {str(recipe)!r}], standalone_mode=False)")
    assert run_probe(call) == "applied True"
