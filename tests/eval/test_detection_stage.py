"""The ``detection`` stage end to end: a tiny ResNet-18 run fine-tuned on a tiny VOC tree."""

import json
from pathlib import Path

import pytest

from moeheads.errors import ConfigError
from moeheads.eval.runner import evaluate_run
from moeheads.recipe.io import load_recipe
from moeheads.train.engine import Trainer
from tests.cli import cli
from tests.eval.voc_tree import tiny_voc
from tests.train.recipes import tiny_recipe, write_recipe

#: A schedule of seconds on the CPU: tiny images, few RoIs, a few steps.
FAST = {"iterations": 4, "images_per_batch": 2, "warmup_iters": 2, "steps": [3],
        "train_sizes": [64], "test_size": 64, "anchor_sizes": [16, 32], "roi_size": 4,
        "rois_per_image": 16, "log_every": 2, "checkpoint_every": 2}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run whose backbone is a ResNet-18 (one epoch on synthetic shapes)."""
    tmp = tmp_path_factory.mktemp("detection_run")
    recipe = tiny_recipe(tmp / "runs", backbone={"name": "torchvision:resnet18"},
                         views__size=32, trainer__epochs=1)
    return Trainer(load_recipe(write_recipe(tmp / "tiny.yaml", recipe))).run().run_dir


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_voc(tmp_path_factory.mktemp("voc"), train=4, test=4)


def test_detection_stage_writes_ap(run_dir: Path, voc_root: Path, capsys) -> None:
    _, path = evaluate_run(run_dir, "detection", {"root": voc_root, **FAST}, device="cpu")
    assert path == run_dir / "eval" / "detection.json"
    result = json.loads(path.read_text())["result"]
    summary = result["summary"]
    assert set(summary) == {"AP", "AP50", "AP75", "coco_AP", "coco_AP50"}
    assert all(0 <= v <= 100 for v in summary.values())
    assert summary["AP"] <= summary["AP50"]
    assert result["train"]["images"] == 8 and result["test"]["images"] == 4  # 07+12, 07
    assert set(result["per_class_AP50"]) >= {"cat", "dog"}
    assert result["per_class_AP50"]["person"] is None  # no object of the class
    out = capsys.readouterr().out
    assert "detection 2/4 loss" in out and "img/s ETA" in out
    assert (run_dir / "eval" / "checkpoints" / "detection.pt").is_file()


def test_detection_stage_resumes_from_its_checkpoint(run_dir: Path, voc_root: Path,
                                                     capsys) -> None:
    options = {"root": voc_root, **FAST}
    evaluate_run(run_dir, "detection", options, device="cpu")
    capsys.readouterr()
    evaluate_run(run_dir, "detection", {**options, "iterations": 6}, device="cpu")
    out = capsys.readouterr().out
    assert "another schedule" in out  # a changed schedule starts again
    evaluate_run(run_dir, "detection", {**options, "iterations": 6}, device="cpu")
    out = capsys.readouterr().out
    assert "resuming from iteration 6" in out and "detection 2/6" not in out


def test_detection_needs_voc_root_or_a_dataset(run_dir: Path, capsys, monkeypatch) -> None:
    with pytest.raises(ConfigError, match="needs PASCAL VOC: give --set root=PATH"):
        evaluate_run(run_dir, "detection", {}, device="cpu")
    code, _, err = cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", "detection",
                       "--device", "cpu", "--set", "root=/nowhere")
    assert code == 2 and "VOCdevkit" in err and "Traceback" not in err


def test_detection_refuses_a_non_resnet_run(tmp_path: Path, voc_root: Path) -> None:
    recipe = tiny_recipe(tmp_path / "runs", trainer__epochs=1)  # small_cnn
    run = Trainer(load_recipe(write_recipe(tmp_path / "t.yaml", recipe))).run().run_dir
    with pytest.raises(ConfigError, match="needs a ResNet backbone"):
        evaluate_run(run, "detection", {"root": voc_root, **FAST}, device="cpu")


def test_detection_on_embedded_shapes_through_the_cli(run_dir: Path, capsys,
                                                      monkeypatch) -> None:
    from moeheads.eval.report import write_report

    sets = [f"{k}={json.dumps(v)}" for k, v in FAST.items()]
    args = [a for s in sets for a in ("--set", s)]
    code, out, err = cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", "detection",
                         "--device", "cpu", "--set",
                         "dataset={name: synthetic_shapes_boxes, length: 4}", *args)
    assert code == 0, err
    result = json.loads((run_dir / "eval" / "detection-synthetic_shapes_boxes.json").read_text())
    assert result["result"]["train"] == {"dataset": "synthetic_shapes_boxes",
                                         "split": "trainval", "images": 4}
    assert set(result["result"]["per_class_AP50"]) == {"circle", "square", "triangle"}
    assert "AP50" in out
    assert "### detection" in write_report(run_dir).read_text()
