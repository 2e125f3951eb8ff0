"""``moeheads --help`` and ``moeheads list`` start fast: no torchvision, no training engine."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

PROBE = """
import json, sys
sys.argv = ["moeheads", *json.loads(sys.argv[1])]
from moeheads.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_modules(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True, text=True, cwd=ROOT, check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_help_imports_neither_torch_nor_the_engine() -> None:
    modules = loaded_modules("--help")
    assert "moeheads.cli" in modules
    assert not {"torch", "torchvision", "moeheads.train", "moeheads.api"} & modules


@pytest.mark.parametrize("kind", ["losses", "datasets"])
def test_list_imports_neither_torchvision_nor_the_engine(kind: str) -> None:
    modules = loaded_modules("list", kind)
    assert f"moeheads.{'data' if kind == 'datasets' else kind}" in modules
    heavy = {m for m in modules if m.split(".")[0] == "torchvision"}
    engine = ("moeheads.train", "moeheads.eval", "moeheads.api")
    heavy |= {m for m in modules if m.startswith(engine)}
    assert not heavy, sorted(heavy)


ORDER_PROBE = """
import sys
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            print("<<torch imported>>", flush=True)
            sys.meta_path.remove(self)
        return None
sys.meta_path.insert(0, Spy())
sys.argv = ["moeheads", "run", "quickstart", "--set", "trainer.epochs=-1"]
from moeheads.cli import main
main()
"""


def test_run_says_something_before_torch_loads() -> None:
    result = subprocess.run(
        [sys.executable, "-c", ORDER_PROBE], capture_output=True, text=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert result.returncode == 2 and "trainer.epochs" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("moeheads ") and "starting quickstart" in lines[0]
    assert "<<torch imported>>" in lines[1:]


@pytest.mark.parametrize("command", [["run", "no_such_recipe"], ["validate", "no_such_recipe"],
                                     ["sweep", "recipes/sweeps/no_such.yaml", "--dry-run"]])
def test_a_recipe_that_matches_nothing_fails_before_torch_loads(command: list[str]) -> None:
    probe = ORDER_PROBE.replace('["moeheads", "run", "quickstart", "--set", "trainer.epochs=-1"]',
                                repr(["moeheads", *command]))
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "300"},
    )
    assert time.perf_counter() - started < 3  # about 0.4 s; PyTorch alone takes seconds
    assert result.returncode == 2 and "recipe file not found" in result.stderr
    assert "sweeps: paper_experts_stl10" in result.stderr
    assert "<<torch imported>>" not in result.stdout
