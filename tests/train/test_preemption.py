"""Preemption under torchrun: SIGTERM to the launcher (as a scheduler sends it) reaches
both workers, which agree on a step, write a checkpoint there and stop; resumed, the run
ends bit-identical to a straight two-process run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.train.recipes import tiny_recipe, write_recipe

STOP_AFTER = 5  # optimiser steps done when SIGTERM comes (in the second epoch)
# Rank 0 sends SIGTERM to its parent, the torchrun agent, during step STOP_AFTER + 1.
PREEMPTED_WORKER = """
import os, signal, sys
import torch
from moeheads.assembly import model
seen, after = {"steps": 0}, int(sys.argv[2])
forward = model.PretrainModel.forward
def preempting(self, batch):
    out = forward(self, batch)
    if torch.is_grad_enabled() and os.environ.get("RANK") == "0":
        seen["steps"] += 1
        if seen["steps"] == after + 1:
            os.kill(os.getppid(), signal.SIGTERM)
    return out
model.PretrainModel.forward = preempting
sys.argv = ["moeheads", "run", sys.argv[1]]
from moeheads.cli import main
main()
"""


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    return subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", *args],
                          capture_output=True, text=True, timeout=600)


def _recipe(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return write_recipe(root / "recipe.yaml", tiny_recipe(
        root / "runs", trainer__epochs=3, trainer__deterministic=True, monitor__knn_every=0,
        monitor__cca_every=0))


def _final(run: Path) -> dict[str, torch.Tensor]:
    sidecar = sorted((run / "checkpoints").glob("step-*.json"))[-1]
    return load_file(str(run / "checkpoints" / json.loads(sidecar.read_text())
                         ["files"]["model"]["name"]))


@pytest.mark.slow
def test_sigterm_under_torchrun_checkpoints_and_resumes_exactly(tmp_path: Path) -> None:
    straight = _torchrun("-m", "moeheads.cli", "run", str(_recipe(tmp_path / "straight")))
    assert straight.returncode == 0, straight.stderr[-3000:]

    recipe = _recipe(tmp_path / "preempted")
    script = tmp_path / "preempted_worker.py"
    script.write_text(PREEMPTED_WORKER)
    stopped = _torchrun(str(script), str(recipe), str(STOP_AFTER))
    assert stopped.returncode != 0
    assert "SIGTERM: interrupted at epoch 2" in stopped.stderr, stopped.stderr[-3000:]
    run = tmp_path / "preempted" / "runs" / "tiny"
    steps = sorted(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.json"))
    assert steps[-1] == STOP_AFTER + 1  # the step both workers agreed on, not an epoch end

    resumed = _torchrun("-m", "moeheads.cli", "run", str(recipe))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, actual = _final(tmp_path / "straight" / "runs" / "tiny"), _final(run)
    assert [k for k in expected if not torch.equal(expected[k], actual[k])] == []
