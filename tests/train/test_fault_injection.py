"""Fault injection: a run interrupted in the middle of a step by Ctrl-C, or by the SIGTERM or
SIGUSR1 of a cluster scheduler, and killed with SIGKILL, at random steps, then resumed with
``--resume auto``, ends bit-identical to a straight run, and its metrics.jsonl holds one
clean history with the same epoch summaries."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.train.recipes import tiny_recipe, write_recipe

EPOCHS, STEPS = 3, 4  # 64 images, batch 16
# Runs the CLI with a fault: after FAULT_AFTER optimiser steps, the next forward pass
# updates the BatchNorm statistics and then the process receives FAULT_SIGNAL.
FAULTY_RUN = """
import os, signal, sys
import torch
from moeheads.assembly import model
steps = {"seen": 0}
after, name = int(sys.argv[2]), sys.argv[3]
forward = model.PretrainModel.forward
def faulty(self, batch):
    out = forward(self, batch)
    if not torch.is_grad_enabled():  # the recipe check's dry run, not a training step
        return out
    steps["seen"] += 1
    if steps["seen"] == after + 1:
        os.kill(os.getpid(), getattr(signal, name))
    return out
model.PretrainModel.forward = faulty
sys.argv = ["moeheads", "run", sys.argv[1]]
from moeheads.cli import main
main()
"""


def _recipe(tmp: Path) -> Path:
    return write_recipe(tmp / "recipe.yaml", tiny_recipe(
        tmp / "runs", trainer__epochs=EPOCHS, trainer__deterministic=True,
        monitor__knn_every=0, monitor__cca_every=0,
        heads__router={"name": "topk", "k": 2},  # noisy gates: RNG state must be restored
    ))


def _run(recipe: Path, fault: tuple[int, str] | None = None) -> subprocess.CompletedProcess:
    if fault is None:
        args = [sys.executable, "-m", "moeheads.cli", "run", str(recipe)]
    else:
        args = [sys.executable, "-c", FAULTY_RUN, str(recipe), str(fault[0]), fault[1]]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def _state(run: Path) -> dict[str, torch.Tensor]:
    sidecar = sorted((run / "checkpoints").glob("step-*.json"))[-1]
    model = json.loads(sidecar.read_text())["files"]["model"]["name"]
    return load_file(str(run / "checkpoints" / model))


def _history(run: Path) -> tuple[list[int], list[dict]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["kind"] == "step"]
    epochs = [{k: v for k, v in r.items() if k not in ("time", "images_per_s")}
              for r in records if r["kind"] == "epoch"]
    return steps, epochs


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("straight")
    proc = _run(_recipe(tmp))
    assert proc.returncode == 0, proc.stderr
    return tmp / "runs" / "tiny"


@pytest.mark.parametrize(("seed", "stop"), [(0, "SIGINT"), (1, "SIGTERM"), (2, "SIGUSR1")])
def test_interrupted_and_killed_runs_resume_bit_identically(seed: int, stop: str,
                                                            straight: Path,
                                                            tmp_path: Path) -> None:
    rng = random.Random(seed)
    total = EPOCHS * STEPS
    interrupt_at = rng.randrange(1, total // 2)  # optimiser steps done when Ctrl-C comes
    recipe = _recipe(tmp_path)
    run = tmp_path / "runs" / "tiny"

    proc = _run(recipe, (interrupt_at, stop))
    assert proc.returncode == 128 + getattr(signal, stop), proc.stderr  # 130, 143, 138
    assert "Traceback" not in proc.stderr
    assert f"{stop}: interrupted at epoch" in proc.stderr
    assert f"continue with: moeheads run {recipe} --resume auto" in proc.stderr
    # the signal in step interrupt_at + 1 stops after it; the resumed run is killed during a
    # later step, with at least one step left for the last run
    kill_after = rng.randrange(1, total - interrupt_at - 1)
    proc = _run(recipe, (kill_after, "SIGKILL"))
    assert proc.returncode == -9, proc.stderr
    proc = _run(recipe)
    assert proc.returncode == 0, proc.stderr

    expected, actual = _state(straight), _state(run)
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert different == [], f"interrupt at {interrupt_at}, kill after {kill_after}"
    steps, epochs = _history(run)
    assert steps == list(range(1, total + 1))  # each step once, in order
    assert epochs == _history(straight)[1]  # the same epoch summaries, resumed or not
