"""Evaluations of one run wait for each other instead of clobbering eval/."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from moeheads.rundir.lock import RunLock
from tests.train.recipes import tiny_recipe, write_recipe

ROOT = Path(__file__).parents[2]


def _eval(run: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "moeheads.cli", "eval", str(run), "--protocol",
                             "knn", "--set", "k=5", "--device", "cpu"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evallock")
    recipe = write_recipe(root / "tiny.yaml", tiny_recipe(
        root / "runs", trainer__epochs=1, monitor__knn_every=0, monitor__cca_every=0))
    done = subprocess.run([sys.executable, "-m", "moeheads.cli", "run", str(recipe)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root / "runs" / "tiny"


def test_an_evaluation_waits_for_the_one_holding_the_run(run: Path) -> None:
    with RunLock(run / "eval"):
        proc = _eval(run)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while not any("waiting for" in line for line in lines) and proc.poll() is None:
            assert time.monotonic() < deadline, lines
            time.sleep(0.2)
        time.sleep(1.0)
        assert proc.poll() is None, lines  # still waiting while the lock is held
        assert not (run / "eval" / "knn.json").exists()
    assert proc.wait(timeout=300) == 0, lines
    reader.join(timeout=10)
    assert any(f"waiting for {run / 'eval'}: in use by" in line for line in lines)
    assert json.loads((run / "eval" / "knn.json").read_text())["protocol"] == "knn"


def test_two_concurrent_evaluations_both_finish(run: Path) -> None:
    procs = [_eval(run), _eval(run)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "Traceback" not in err, err
    assert json.loads((run / "eval" / "knn.json").read_text())["result"]["summary"]["top1"] >= 0
    assert not (run / "eval" / ".lock").exists()
