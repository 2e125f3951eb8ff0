"""Sweeps: planning, dry-run listing, skipping finished runs, resuming an interrupted one."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from moeheads.api import run
from moeheads.cli import app
from moeheads.errors import ConfigError, InterruptedRunError
from moeheads.experiments.plan import SweepSpec, merge, parse_grid
from moeheads.experiments.sweep import DONE, load_sweep, run_status, run_sweep
from moeheads.recipe.io import dump_recipe
from moeheads.recipe.schema import Recipe
from moeheads.rundir.checkpoint import latest_valid_checkpoint
from moeheads.train.loop import TrainLoop
from tests.train.recipes import tiny_recipe, write_recipe


def _sweep_recipe(tmp_path: Path, **sweep: Any) -> Path:
    recipe = tiny_recipe(tmp_path / "runs", trainer__epochs=2, monitor__knn_every=0,
                         monitor__cca_every=0)
    recipe["sweep"] = sweep
    return write_recipe(tmp_path / "tiny.yaml", recipe)


def test_grid_settings_and_seeds_make_the_product(tmp_path: Path) -> None:
    path = _sweep_recipe(tmp_path, seeds=[0, 1], settings={
        "hard": {"heads": {"router": {"name": "hard"}, "num_experts": 2}},
        "star": {},
    })
    plan = load_sweep(path, grid=["heads.out_features=4,8"])
    assert plan.folder == tmp_path / "runs" / "tiny-sweep"
    assert [r.name for r in plan.runs] == [
        "hard_out_features-4-seed0", "hard_out_features-4-seed1",
        "hard_out_features-8-seed0", "hard_out_features-8-seed1",
        "star_out_features-4-seed0", "star_out_features-4-seed1",
        "star_out_features-8-seed0", "star_out_features-8-seed1",
    ]
    first = plan.runs[0]
    assert first.values == {"setting": "hard", "heads.out_features": 4}
    assert first.recipe["heads"]["router"] == {"name": "hard"}
    assert first.recipe["heads"]["num_experts"] == 2 and first.recipe["seed"] == 0
    assert first.recipe["output_dir"] == str(plan.folder) and first.recipe["name"] == first.name
    assert plan.runs[-1].recipe["heads"]["router"] == {"name": "star"}
    assert plan.runs[-1].recipe["heads"]["num_experts"] == 3


def test_by_seed_order_puts_the_seeds_outermost(tmp_path: Path) -> None:
    path = _sweep_recipe(tmp_path, seeds=[0, 1], order="by_seed",
                         grid={"heads.num_experts": [2, 4]})
    plan = load_sweep(path, name="ordered")
    assert plan.folder.name == "ordered"
    assert [r.name for r in plan.runs] == ["num_experts-2-seed0", "num_experts-4-seed0",
                                           "num_experts-2-seed1", "num_experts-4-seed1"]
    with pytest.raises(ConfigError, match="by_setting or by_seed"):
        SweepSpec.from_block({"order": "random"})


def test_merge_deletes_with_null_and_grid_parsing() -> None:
    base = {"tasks": {"inv": {"name": "ntxent"}, "eq": {"name": "star_eq"}}, "seed": 1}
    assert merge(base, {"tasks": {"eq": None}}) == {"tasks": {"inv": {"name": "ntxent"}},
                                                    "seed": 1}
    assert base["tasks"]["eq"] == {"name": "star_eq"}  # the base is left alone
    assert parse_grid(["a.b=2,4", "c=[[0.2, 1.0], [0.4, 1.0]]", "d=star,hard"]) == {
        "a.b": [2, 4], "c": [[0.2, 1.0], [0.4, 1.0]], "d": ["star", "hard"]}
    with pytest.raises(ConfigError, match="--grid expects"):
        parse_grid(["heads.num_experts"])
    with pytest.raises(ConfigError, match=r"sweep\.bogus: unknown field"):
        SweepSpec.from_block({"bogus": 1})


def test_invalid_run_recipe_is_refused_before_any_run(tmp_path: Path) -> None:
    path = _sweep_recipe(tmp_path, grid={"heads.num_experts": [2, 0]})
    with pytest.raises(ConfigError, match="sweep run num_experts-0-seed3"):
        load_sweep(path)
    assert not (tmp_path / "runs").exists()


def test_dry_run_lists_runs_and_their_state(tmp_path: Path) -> None:
    path = _sweep_recipe(tmp_path)
    args = ["sweep", str(path), "--grid", "heads.num_experts=2,4", "--seeds", "0,1", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "num_experts-2-seed0" in result.output and "num_experts-4-seed1" in result.output
    assert "4 runs in" in result.output and "(0 done)" in result.output
    assert "pending" in result.output and not (tmp_path / "runs").exists()


def test_finished_runs_are_skipped_and_index_runs_one(tmp_path: Path) -> None:
    plan = load_sweep(_sweep_recipe(tmp_path), grid=["heads.num_experts=2,4"], seeds=[0, 1])
    calls: list[str] = []

    def fake_run(recipe: dict[str, Any], resume: str) -> Any:
        calls.append(recipe["name"])
        folder = Path(recipe["output_dir"]) / recipe["name"]
        folder.mkdir(parents=True)
        (folder / "recipe.yaml").write_text(dump_recipe(Recipe.model_validate(recipe)))
        return type("R", (), {"epochs": 2, "steps": 8, "evaluations": []})()

    run_sweep(plan, index=2, runner=fake_run)
    assert calls == ["num_experts-4-seed0"]
    assert [s.state for s in run_status(plan)] == ["pending", "pending", "done", "pending"]
    manifest = yaml.safe_load((plan.folder / "sweep.yaml").read_text())
    assert [r["name"] for r in manifest["runs"]] == [r.name for r in plan.runs]
    assert manifest["runs"][2]["values"] == {"heads.num_experts": 4}

    run_sweep(plan, runner=fake_run)
    assert calls == ["num_experts-4-seed0", "num_experts-2-seed0", "num_experts-2-seed1",
                     "num_experts-4-seed1"]
    run_sweep(plan, runner=fake_run)  # everything done: nothing runs
    assert len(calls) == 4
    with pytest.raises(ConfigError, match="--index 4"):
        run_sweep(plan, index=4, runner=fake_run)


def test_interrupted_sweep_resumes_the_run_it_stopped_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = load_sweep(_sweep_recipe(tmp_path), grid=["heads.num_experts=2,4"])
    original_step = TrainLoop._optimizer_step
    steps: list[int] = []

    def step_then_ctrl_c(loop: TrainLoop) -> None:
        original_step(loop)
        steps.append(loop.global_step)
        if len(steps) == 8 + 6:  # the second run, in its second epoch (4 steps per epoch)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C

    monkeypatch.setattr(TrainLoop, "_optimizer_step", step_then_ctrl_c)
    log = Console(file=(tmp_path / "log.txt").open("w"))
    with pytest.raises(InterruptedRunError):
        run_sweep(plan, console=log)
    first, second = (plan.folder / r.name for r in plan.runs)
    assert (first / DONE).is_file() and not (second / DONE).exists()
    assert latest_valid_checkpoint(second).step == 6
    assert [s.state for s in run_status(plan)] == ["done", "partial"]

    started: list[str] = []
    run_sweep(plan, on_run=lambda s: started.append(f"{s.run.name}:{s.state}"),
              runner=run, console=log)
    assert started == ["num_experts-2-seed3:done", "num_experts-4-seed3:partial"]
    assert steps[8 + 6:] == [7, 8]  # the second run continued from step 6, nothing else ran
    assert (second / DONE).is_file() and latest_valid_checkpoint(second).step == 8


def test_a_finished_run_with_other_training_settings_is_refused(tmp_path: Path) -> None:
    path = _sweep_recipe(tmp_path, grid={"heads.num_experts": [2]})
    log = Console(file=(tmp_path / "log.txt").open("w"))
    plan = load_sweep(path, overrides=["trainer.epochs=1"])
    run_sweep(plan, console=log)
    monitored = load_sweep(path, overrides=["trainer.epochs=1", "monitor.knn_k=3"])
    assert [s.state for s in run_status(monitored)] == ["done"]  # monitoring is not training
    edited = load_sweep(path, overrides=["trainer.epochs=2"])
    assert [s.state for s in run_status(edited)] == ["changed"]
    with pytest.raises(ConfigError, match="other training settings"):
        run_sweep(edited, console=log)


def test_a_run_finished_meanwhile_by_another_process_is_skipped(tmp_path: Path) -> None:
    plan = load_sweep(_sweep_recipe(tmp_path), grid=["heads.num_experts=2,4"])
    calls: list[str] = []

    def fake_run(recipe: dict[str, Any], resume: str) -> Any:
        calls.append(recipe["name"])
        for other in plan.runs:  # this run, and (as an array task would) the next one
            folder = plan.folder / other.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "recipe.yaml").write_text(dump_recipe(Recipe.model_validate(other.recipe)))
        (plan.folder / plan.runs[1].name / DONE).write_text("{}")
        return type("R", (), {"epochs": 2, "steps": 8, "evaluations": []})()

    finished = run_sweep(plan, runner=fake_run)
    assert calls == ["num_experts-2-seed3"] and [s.state for s in finished] == ["done", "done"]


def test_sweep_command_runs_then_compare_reads_real_results(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path / "runs", trainer__epochs=1, monitor__knn_every=0,
                         monitor__cca_every=0,
                         evaluation=[{"protocol": "cca", "max_images": 20},
                                     {"protocol": "routing", "max_images": 20}])
    path = write_recipe(tmp_path / "tiny.yaml", recipe)
    cli = CliRunner()
    result = cli.invoke(app, ["sweep", str(path), "--grid", "heads.num_experts=2", "--seeds",
                              "0,1"])
    assert result.exit_code == 0, result.output
    assert "[1/2] run: num_experts-2-seed0" in result.output and "sweep finished" in result.output
    again = cli.invoke(app, ["sweep", str(path), "--grid", "heads.num_experts=2", "--seeds",
                             "0,1"])
    assert again.output.count("skip (done)") == 2
    compared = cli.invoke(app, ["compare", str(tmp_path / "runs" / "tiny-sweep")])
    assert compared.exit_code == 0, compared.output
    assert "| num_experts-2 |" in compared.output and "routing overlap" in compared.output


def test_each_distinct_recipe_is_checked_once_and_every_run_its_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import moeheads.experiments.sweep as sweep_module

    checked: list[int] = []
    original = sweep_module.validate

    def counting(recipe: Recipe) -> Recipe:
        checked.append(recipe.heads.num_experts)
        return original(recipe)

    monkeypatch.setattr(sweep_module, "validate", counting)
    plan = load_sweep(_sweep_recipe(tmp_path), grid=["heads.num_experts=2,4"], seeds=[0, 1, 2])
    assert len(plan.runs) == 6 and checked == [2, 4]  # the seeds share one check
    with pytest.raises(ConfigError, match=r"(?s)sweep run num_experts-2-seed0: .*trainer\.epochs"):
        load_sweep(_sweep_recipe(tmp_path), grid=["heads.num_experts=2,4"],
                   overrides=["trainer.epochs=-1"], seeds=[0, 1, 2])
