"""The engine end to end through the command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.train.recipes import tiny_recipe, write_recipe


def moeheads(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "moeheads.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_two_epoch_run_through_cli(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(tmp_path / "runs"))
    proc = moeheads("run", str(recipe))
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "tiny"
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("moeheads ") and "starting" in lines[0]  # before PyTorch loads
    text = " ".join(proc.stdout.split())  # the console wraps long lines
    banner = text[text.index("fresh start:"):][:300]
    assert str(run) in banner and "cpu (fp32" in banner
    summary = text[text.index("epoch 2/2"):][:400]
    assert "kNN top-1" in summary and "train img/s" in summary and "knn_top1" not in summary
    assert (run / "recipe.yaml").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    for record in epochs:
        for key in ("loss", "inv", "eq", "eq/weighted", "knn_top1", "nn1_top1", "cca_mean"):
            assert key in record, key
        assert set(record["routing"]["usage"]) == {"inv", "eq"}
    steps = [r for r in records if r["kind"] == "step"]
    # 64 images / batch 16 = 4 steps per epoch, 2 epochs, a line every step
    assert [r["step"] for r in steps] == list(range(1, 9))
    # the exported backbone loads into the same architecture
    weights = load_file(str(run / "backbone.safetensors"))
    from moeheads.backbones import create_backbone

    backbone = create_backbone("small_cnn", width=4, depth=2)
    backbone.module.load_state_dict(weights)
    sidecar = json.loads((run / "backbone.json").read_text())
    assert sidecar["feature_dim"] == 8


def test_export_command(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "tiny.yaml",
                          tiny_recipe(tmp_path / "runs", trainer__epochs=1))
    assert moeheads("run", str(recipe)).returncode == 0
    out = tmp_path / "exported.safetensors"
    proc = moeheads("export", str(tmp_path / "runs" / "tiny"), str(out))
    assert proc.returncode == 0, proc.stderr
    assert torch.equal(load_file(str(out))["0.weight"],
                       load_file(str(tmp_path / "runs/tiny/backbone.safetensors"))["0.weight"])
    again = moeheads("export", str(tmp_path / "runs" / "tiny"), str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr  # the flag, not Python


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trainer__colour": "red"}, "trainer.colour (line"),
        ({"trainer__epochs": "three"}, "trainer.epochs"),
        ({"heads__router": {"name": "stra"}}, "did you mean 'star'"),
        ({"optimizer__lr": -0.1}, "optimizer.lr"),
        ({"data__dataset": {"name": "stl10", "root": "/nonexistent/stl10"}}, "/nonexistent/stl10"),
    ],
)
def test_bad_recipes_exit_2_naming_the_field(tmp_path: Path, changes: dict, message: str) -> None:
    recipe = write_recipe(tmp_path / "bad.yaml", tiny_recipe(tmp_path / "runs", **changes))
    proc = moeheads("run", str(recipe))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_prints_resolved_recipe_and_set_overrides(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(tmp_path / "runs"))
    proc = moeheads("validate", str(recipe), "--set", "trainer.epochs=7")
    assert proc.returncode == 0, proc.stderr
    assert "epochs: 7" in proc.stdout and "momentum: 0.9" in proc.stdout
    proc = moeheads("validate", str(recipe), "--set", "trainer.epochs")
    assert proc.returncode == 2 and "FIELD.PATH=VALUE" in proc.stderr
    proc = moeheads("validate", str(recipe), "--set", "evaluation=[{protocol: knn, kk: 3}]")
    assert proc.returncode == 2 and "evaluation[0]" in proc.stderr and "kk" in proc.stderr


def test_resume_never_starts_over_beside_the_earlier_run(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "tiny.yaml",
                          tiny_recipe(tmp_path / "runs", trainer__epochs=1))
    assert moeheads("run", str(recipe)).returncode == 0
    proc = moeheads("run", str(recipe), "--resume", "never")
    assert proc.returncode == 0 and "the earlier run was moved to" in proc.stdout
    assert len(list((tmp_path / "runs").iterdir())) == 2
