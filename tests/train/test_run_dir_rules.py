"""A run directory belongs to one recipe and one writer: a changed recipe is refused (or
continued on request, and recorded), --resume never moves an earlier run aside, a second
writer is refused, a failed start leaves nothing, and the banner says how a run starts."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from moeheads.rundir.checkpoint import latest_valid_checkpoint
from moeheads.rundir.lock import RunLock
from moeheads.rundir.metrics import read_metrics
from moeheads.train.loop import TrainLoop
from tests.cli import cli as run_cli
from tests.train.recipes import tiny_recipe, write_recipe

QUIET = {"monitor__knn_every": 0, "monitor__cca_every": 0, "trainer__epochs": 1}


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        *args: str) -> tuple[int, str]:
    """``moeheads ARGS`` in this process: (exit code, stdout + stderr)."""
    code, out, err = run_cli(capsys, monkeypatch, *args)
    return code, out + err


@pytest.fixture
def trained(tmp_path: Path, capsys, monkeypatch) -> Path:
    """A finished one-epoch run (4 steps); returns its recipe file."""
    recipe = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(tmp_path / "runs", **QUIET))
    code, out = cli(capsys, monkeypatch, "run", str(recipe))
    assert code == 0 and "fresh start" in out, out
    return recipe


def test_a_changed_recipe_is_refused_and_the_run_kept(trained: Path, tmp_path: Path, capsys,
                                                      monkeypatch) -> None:
    run = tmp_path / "runs" / "tiny"
    before = latest_valid_checkpoint(run).path
    metrics = (run / "metrics.jsonl").read_text()
    code, out = cli(capsys, monkeypatch, "run", str(trained), "--set", "optimizer.lr=0.001")
    assert code == 2
    assert "optimizer.lr 0.05 -> 0.001" in out
    for choice in ("--set name=tiny-2", "--resume never", "--allow-recipe-change"):
        assert choice in out
    assert latest_valid_checkpoint(run).path == before  # nothing overwritten or pruned
    assert (run / "metrics.jsonl").read_text() == metrics


def test_allow_recipe_change_continues_and_records_it(trained: Path, tmp_path: Path, capsys,
                                                      monkeypatch) -> None:
    run = tmp_path / "runs" / "tiny"
    checkpoint = latest_valid_checkpoint(run).path
    code, out = cli(capsys, monkeypatch, "run", str(trained), "--set", "trainer.epochs=2",
                    "--resume", str(checkpoint), "--allow-recipe-change")
    assert code == 0, out
    assert "resuming" in out and "trainer.epochs 1 -> 2" in out
    assert "(step 4, 1 epoch done)" in out  # the wording the NaN advice uses too
    assert latest_valid_checkpoint(run).step == 8
    changes = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "recipe_change"]
    assert changes == [{**changes[0], "step": 4, "changes": {"trainer.epochs": [1, 2]}}]
    assert "epochs: 1" in (run / "recipe.step-4.yaml").read_text()
    assert "epochs: 2" in (run / "recipe.yaml").read_text()
    epochs = [r["epoch"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "epoch"]
    assert epochs == [1, 2]


def test_resume_never_moves_the_earlier_run_aside(trained: Path, tmp_path: Path, capsys,
                                                  monkeypatch) -> None:
    old = (tmp_path / "runs" / "tiny" / "metrics.jsonl").read_text()
    code, out = cli(capsys, monkeypatch, "run", str(trained), "--resume", "never")
    assert code == 0 and "fresh start" in out and "moved to" in out, out
    aside = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("tiny.")]
    assert len(aside) == 1 and (aside[0] / "metrics.jsonl").read_text() == old
    assert latest_valid_checkpoint(aside[0]).step == 4


def test_an_unchanged_complete_run_says_so(trained: Path, capsys, monkeypatch) -> None:
    code, out = cli(capsys, monkeypatch, "run", str(trained))
    assert code == 0 and "already complete" in out, out


def test_a_second_writer_is_refused_at_once(trained: Path, tmp_path: Path, capsys,
                                            monkeypatch) -> None:
    run = tmp_path / "runs" / "tiny"
    with RunLock(run):  # as another process's run would hold it
        code, out = cli(capsys, monkeypatch, "run", str(trained), "--set", "trainer.epochs=2",
                        "--allow-recipe-change")
    assert code == 2 and "is in use by process" in out, out
    assert latest_valid_checkpoint(run).step == 4


def test_a_failed_start_leaves_no_run_directory(tmp_path: Path, capsys, monkeypatch) -> None:
    recipe = tiny_recipe(tmp_path / "runs", **QUIET)
    recipe["data"]["dataset"] = {"name": "stl10", "root": str(tmp_path / "nothing")}
    code, out = cli(capsys, monkeypatch, "run", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 2 and "stl10" in out, out
    assert not (tmp_path / "runs" / "tiny").exists()


def test_second_ctrl_c_stops_at_once_and_says_no_checkpoint(tmp_path: Path, capsys,
                                                            monkeypatch) -> None:
    recipe = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(tmp_path / "runs", **QUIET))
    step = TrainLoop._optimizer_step

    def ctrl_c_twice(loop: TrainLoop) -> None:
        step(loop)
        if loop.global_step == 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(TrainLoop, "_optimizer_step", ctrl_c_twice)
    code, out = cli(capsys, monkeypatch, "run", str(recipe))
    assert code == 130 and "without a checkpoint" in out, out
    assert latest_valid_checkpoint(tmp_path / "runs" / "tiny") is None


def test_interrupted_epoch_summary_counts_every_step(tmp_path: Path, capsys,
                                                     monkeypatch) -> None:
    """The epoch record after a mid-epoch resume averages all four steps, not the last two."""
    recipe = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(
        tmp_path / "runs", trainer__deterministic=True, **QUIET))
    straight = write_recipe(tmp_path / "straight.yaml", tiny_recipe(
        tmp_path / "straight", trainer__deterministic=True, **QUIET))
    assert cli(capsys, monkeypatch, "run", str(straight))[0] == 0
    step = TrainLoop._optimizer_step

    def ctrl_c_at_two(loop: TrainLoop) -> None:
        step(loop)
        if loop.global_step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(TrainLoop, "_optimizer_step", ctrl_c_at_two)
    assert cli(capsys, monkeypatch, "run", str(recipe))[0] == 130
    monkeypatch.setattr(TrainLoop, "_optimizer_step", step)
    assert cli(capsys, monkeypatch, "run", str(recipe))[0] == 0

    def epoch(run: Path) -> dict:
        record = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "epoch"]
        assert len(record) == 1
        return {k: v for k, v in record[0].items() if k not in ("time", "images_per_s")}

    assert epoch(tmp_path / "runs" / "tiny") == epoch(tmp_path / "straight" / "tiny")
    steps = [r["step"] for r in read_metrics(tmp_path / "runs/tiny/metrics.jsonl")
             if r["kind"] == "step"]
    assert steps == [1, 2, 3, 4]
    assert json.loads((tmp_path / "runs/tiny/metrics.jsonl").read_text().splitlines()[-1])


def test_a_changed_learning_rate_takes_effect_on_resume(trained: Path, tmp_path: Path, capsys,
                                                        monkeypatch) -> None:
    """The advice after a non-finite loss (a lower lr, --allow-recipe-change) trains with the
    new rate: steps 5-8 log the lr a run with that rate from the start logs there, and the
    optimiser holds the new momentum."""
    import torch

    run = tmp_path / "runs" / "tiny"
    checkpoint = latest_valid_checkpoint(run).path
    new = ("--set", "trainer.epochs=2", "--set", "optimizer.lr=0.01",
           "--set", "optimizer.momentum=0.5")
    code, out = cli(capsys, monkeypatch, "run", str(trained), *new, "--resume", str(checkpoint),
                    "--allow-recipe-change")
    assert code == 0, out
    assert "optimizer.lr 0.05 -> 0.01" in out
    code, out = cli(capsys, monkeypatch, "run", str(trained), *new, "--set", "name=fresh")
    assert code == 0, out

    def lrs(name: str) -> dict[int, float]:
        return {r["step"]: r["lr"] for r in read_metrics(tmp_path / "runs" / name / "metrics.jsonl")
                if r["kind"] == "step"}

    resumed, fresh = lrs("tiny"), lrs("fresh")
    assert [resumed[s] for s in range(5, 9)] == pytest.approx([fresh[s] for s in range(5, 9)])
    assert resumed[4] != pytest.approx(fresh[4])  # the first epoch ran with the old rate
    state = torch.load(latest_valid_checkpoint(run).state_path, weights_only=True)
    groups = state["optimizer"]["param_groups"]
    assert {g["momentum"] for g in groups} == {0.5}


def test_a_damaged_newest_checkpoint_is_named_and_kept(tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    """Two epochs; the step-8 weights truncated: the run continues from step 4, names the
    damaged checkpoint, keeps its files under checkpoints/damaged/, and ends at step 8."""
    recipe = write_recipe(tmp_path / "tiny.yaml",
                          tiny_recipe(tmp_path / "runs", **{**QUIET, "trainer__epochs": 2}))
    assert cli(capsys, monkeypatch, "run", str(recipe))[0] == 0
    run = tmp_path / "runs" / "tiny"
    weights = next((run / "checkpoints").glob("step-000000008.model.*.safetensors"))
    damaged = weights.read_bytes()[:100]
    weights.write_bytes(damaged)
    code, out = cli(capsys, monkeypatch, "run", str(recipe), "--set", "trainer.epochs=2")
    assert code == 0, out
    assert "skipped damaged checkpoint step-000000008.json" in out
    kept = list((run / "checkpoints" / "damaged").glob("step-000000008-*"))
    assert len(kept) == 1
    assert (kept[0] / weights.name).read_bytes() == damaged  # as it was, for inspection
    assert (kept[0] / "step-000000008.json").is_file()
    assert latest_valid_checkpoint(run).step == 8  # written afresh


def test_the_nan_advice_names_the_checkpoint_as_the_banner_does(trained: Path,
                                                                 tmp_path: Path) -> None:
    from moeheads.api import resolve_recipe
    from moeheads.train.start import nan_advice

    advice = nan_advice(resolve_recipe(trained), str(trained))
    assert "(step 4, 1 epoch done)" in advice
    assert f"moeheads run {trained} --set optimizer.lr=0.005 --resume " in advice
