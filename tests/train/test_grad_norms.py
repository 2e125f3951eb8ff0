"""Each task's gradient norm at the backbone, logged at log steps: right, free of host
reads, and without effect on training."""

import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from moeheads.recipe.schema import Recipe
from moeheads.rundir.checkpoint import latest_valid_checkpoint
from moeheads.runtime.distributed import DistContext
from moeheads.train.builder import build_training
from moeheads.train.engine import Trainer
from moeheads.train.grad_norms import task_gradient_norms
from tests.host_reads import train_counting_host_reads
from tests.train.recipes import tiny_recipe

QUIET = {"monitor__knn_every": 0, "monitor__cca_every": 0, "trainer__epochs": 1}


def _train(tmp_path: Path, grad_norms: bool) -> tuple[list[dict], dict[str, torch.Tensor]]:
    recipe = Recipe.model_validate(tiny_recipe(tmp_path, monitor__grad_norms=grad_norms,
                                               trainer__log_every=2, **QUIET))
    Trainer(recipe, resume="never", console=Console(quiet=True)).run()
    lines = (recipe.run_dir / "metrics.jsonl").read_text().splitlines()
    steps = [r for r in map(json.loads, lines) if r["kind"] == "step"]
    info = latest_valid_checkpoint(recipe.run_dir)
    assert info is not None
    return steps, load_file(str(info.model_path))


def test_logged_at_log_steps_and_training_is_unchanged(tmp_path: Path) -> None:
    steps, weights = _train(tmp_path / "on", True)
    plain_steps, plain = _train(tmp_path / "off", False)
    assert [r["step"] for r in steps] == [2, 4]
    for record in steps:
        assert record["inv/grad_norm"] > 0 and record["eq/grad_norm"] > 0
    assert not any("grad_norm" in key for r in plain_steps for key in r)
    assert [r["loss"] for r in steps] == [r["loss"] for r in plain_steps]
    assert weights.keys() == plain.keys()
    assert all(torch.equal(weights[k], plain[k]) for k in weights)


def _norms(tmp_path: Path, eq_weight: float) -> dict[str, float]:
    recipe = Recipe.model_validate(tiny_recipe(tmp_path, tasks__eq__weight=eq_weight, **QUIET))
    torch.manual_seed(0)
    parts = build_training(recipe, DistContext())
    batch = next(iter(parts.data.loader))
    prepared = parts.data.photometric.prepare(batch)
    out = parts.model(prepared)
    return {k: float(v) for k, v in task_gradient_norms(out, ("inv", "eq")).items()}


def test_the_norm_scales_with_the_task_weight(tmp_path: Path) -> None:
    one, two, none = (_norms(tmp_path / str(w), w) for w in (1.0, 2.0, 0.0))
    assert two["eq/grad_norm"] == pytest.approx(2 * one["eq/grad_norm"], rel=1e-5)
    assert two["inv/grad_norm"] == pytest.approx(one["inv/grad_norm"], rel=1e-5)
    assert none["eq/grad_norm"] == 0 and none["inv/grad_norm"] > 0


def test_a_logged_step_reads_nothing_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = Recipe.model_validate(tiny_recipe(tmp_path, trainer__log_every=1, **QUIET))
    reads, values, _, _ = train_counting_host_reads(recipe, monkeypatch)
    assert all("eq/grad_norm" in v for v in values)
    assert not reads, dict(reads)
