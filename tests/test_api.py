"""The public Python API: moeheads.run and moeheads.evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import moeheads
from moeheads.errors import ConfigError
from moeheads.recipe.schema import Recipe
from tests.train.recipes import tiny_recipe, write_recipe


def test_run_pretrains_evaluates_and_reports(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path / "runs", evaluation=[{"protocol": "knn", "k": 5}])
    path = write_recipe(tmp_path / "tiny.yaml", recipe)
    with open(tmp_path / "log.txt", "w") as log:
        results = moeheads.run(path, overrides=["trainer.epochs=1"], console=Console(file=log))
    assert "run finished" in (tmp_path / "log.txt").read_text()

    assert isinstance(results, moeheads.RunResults)
    assert results.run_dir == tmp_path / "runs" / "tiny"
    assert results.epochs == 1 and results.steps == 4
    assert results.backbone == results.run_dir / "backbone.safetensors"
    assert results.report == results.run_dir / "report.md" and results.report.is_file()
    [knn] = results.evaluations
    assert knn.protocol == "knn" and 0.0 <= knn.summary["top1"] <= 1.0
    assert json.loads(knn.path.read_text())["result"]["summary"] == knn.summary

    cca = moeheads.evaluate(results.run_dir, "cca", device="cpu", max_images=10)
    assert cca.path == results.run_dir / "eval" / "cca.json"
    assert cca.record["options"]["max_images"] == 10 and "mean" in cca.summary


def test_run_takes_a_mapping_and_rejects_bad_overrides(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path / "runs")
    with pytest.raises(ConfigError, match=r"trainer\.epochs"):
        moeheads.run(recipe, overrides=["trainer.epochs=0"])
    with pytest.raises(ConfigError, match=r"evaluation\[0\]"):
        moeheads.run({**recipe, "evaluation": [{"protocol": "knn", "neighbours": 3}]})
    assert not (tmp_path / "runs").exists()  # rejected before any training


def test_a_recipe_object_takes_overrides(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(tiny_recipe(tmp_path / "runs"))
    assert moeheads.validate(recipe) is recipe
    changed = moeheads.validate(recipe, ["trainer.epochs=5", "heads.num_experts=4"])
    assert (changed.trainer.epochs, changed.heads.num_experts) == (5, 4)
    assert changed.data == recipe.data and recipe.trainer.epochs == 2


def test_evaluate_rejects_an_unknown_protocol(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'knn'"):
        moeheads.evaluate(tmp_path, "knm")


def test_import_moeheads_stays_light() -> None:
    code = ("import sys, moeheads; heavy = [m for m in ('moeheads.api', 'moeheads.train', "
            "'moeheads.eval', 'moeheads.rundir', 'moeheads.recipe.schema') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "[]"
    assert {"run", "evaluate", "RunResults"} <= set(dir(moeheads))
