"""Every evaluation protocol end to end on a tiny trained run, through the command line."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from moeheads.errors import ConfigError
from moeheads.eval.runner import check_stages, finish_run
from moeheads.recipe.io import load_recipe
from moeheads.train.engine import Trainer
from tests.cli import cli
from tests.train.recipes import tiny_recipe, write_recipe

STAGES = [{"protocol": "knn", "k": 5}, {"protocol": "cca"}]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run (2 epochs on synthetic shapes) with two evaluation stages."""
    tmp = tmp_path_factory.mktemp("eval_cli")
    recipe = load_recipe(write_recipe(tmp / "tiny.yaml",
                                      tiny_recipe(tmp / "runs", evaluation=STAGES)))
    result = Trainer(recipe).run()
    finish_run(recipe, result.run_dir)
    return result.run_dir


@pytest.fixture(scope="module")
def folder_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageFolder tree with train/val/test splits: red vs. blue noisy squares."""
    root = tmp_path_factory.mktemp("folder_data")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3), ("test", 4)):
        for label, colour in enumerate([(220, 40, 40), (40, 40, 220)]):
            directory = root / split / f"class{label}"
            directory.mkdir(parents=True)
            for i in range(count):
                noise = rng.integers(-30, 30, (20, 20, 3))
                pixels = (np.array(colour) + noise).clip(0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(directory / f"{i}.png")
    return root


def result(run_dir: Path, stem: str) -> dict:
    return json.loads((run_dir / "eval" / f"{stem}.json").read_text())["result"]


def test_stages_and_report_after_pretraining(run_dir: Path) -> None:
    assert result(run_dir, "knn")["k"] == 5
    assert 0 <= result(run_dir, "cca")["summary"]["mean"] <= 1
    report = (run_dir / "report.md").read_text()
    assert "![Loss](report/losses.png)" in report and "### knn" in report


@pytest.mark.parametrize("protocol", ["knn", "nn1", "cca", "equivariance", "routing"])
def test_held_out_protocols(run_dir: Path, protocol: str, capsys, monkeypatch) -> None:
    code, out, err = cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", protocol,
                         "--device", "cpu", "--set", "batch_size=8")
    assert code == 0, err
    assert f"eval/{protocol}.json" in out
    summary = result(run_dir, protocol)["summary"]
    assert summary and all(v is None or isinstance(v, int | float) for v in summary.values())


def test_cca_matches_the_training_monitor(run_dir: Path) -> None:
    # Same probe images, same weights, heads in eval mode: the last epoch's monitor value.
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in epochs if r["kind"] == "epoch"][-1]
    cca = result(run_dir, "cca")
    assert cca["summary"]["mean"] == pytest.approx(last["cca_mean"], abs=1e-4)
    assert set(cca["per_expert"]) == {"inv", "eq"} and len(cca["per_expert"]["inv"]) == 3


def test_cca_reports_every_estimator_and_what_it_ran_on(run_dir: Path, capsys,
                                                        monkeypatch) -> None:
    code, out, err = cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", "cca",
                         "--device", "cpu", "--set", "embeddings=experts", "--set", "top_k=3")
    assert code == 0, err
    cca = result(run_dir, "cca")
    summary = cca["summary"]
    assert {"mean", "svcca", "pwcca", "top_k", "k", "images", "dims", "svcca dims"} <= set(summary)
    assert summary["images"] == 20 and summary["dims"] == 8  # probe_test, 8-d embeddings
    assert summary["k"] == 3 and summary["top_k"] >= summary["mean"]  # 3 largest of 8
    assert all(0 <= summary[k] <= 1 for k in ("mean", "svcca", "pwcca"))
    assert set(cca["expert_pairs_by_estimator"]) == {"mean", "svcca", "pwcca", "top_k"}
    assert "expert pairs pwcca" in summary and "pwcca" in out


def test_equivariance_scores_the_embedding_predictors(run_dir: Path, capsys,
                                                      monkeypatch) -> None:
    code, _, err = cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", "equivariance",
                       "--device", "cpu", "--set", "fit_epochs=2", "--set", "batch_size=8")
    assert code == 0, err
    found = result(run_dir, "equivariance")
    summary = found["summary"]
    assert found["embedding"]["task"] == "eq"  # the equivariant task's embedding
    for label in ("no change", "fitted", "own"):  # star_eq has its own predictor
        assert 0 < summary[f"{label} MRR"] <= 1 and 0 <= summary[f"{label} H@1"] <= 1
    assert summary["no change prediction error"] == pytest.approx(1.0)  # by definition
    code, _, err = cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", "equivariance",
                       "--device", "cpu", "--set", "task=rotation")
    assert code == 2 and "task 'rotation' is not one of this run's" in err


def test_routing_scores_each_experts_neighbours(run_dir: Path, capsys, monkeypatch) -> None:
    code, _, err = cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", "routing",
                       "--device", "cpu", "--set", "neighbours=5", "--set", "batch_size=8")
    assert code == 0, err
    found = result(run_dir, "routing")
    rows = found["retrieval"]["experts"]
    assert found["retrieval"]["k"] == 5 and [r["role"] for r in rows] == found["roles"]
    assert all(0 <= r["knn_accuracy"] <= 1 for r in rows)
    role = rows[0]["role"]
    assert f"{role} experts knn_accuracy" in found["summary"]
    figure = run_dir / "eval" / found["figures"][0]
    assert figure.name == "routing-neighbours.png" and figure.read_bytes()[:4] == b"\x89PNG"
    cli(capsys, monkeypatch, "report", str(run_dir))
    report = (run_dir / "report.md").read_text()
    assert "(eval/routing-neighbours.png)" in report and "Nearest 5 neighbours" in report


def test_equivariance_on_synthetic_shapes_scores_factors(run_dir: Path, capsys,
                                                         monkeypatch) -> None:
    assert cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", "equivariance")[0] == 0
    out = result(run_dir, "equivariance")
    assert len(out["absolute"]) == 11 and len(out["difference"]) == 11
    assert set(out["factors"]) == {"hue", "x", "y", "scale", "rotation", "class_accuracy"}


def test_routing_writes_heatmap(run_dir: Path, capsys, monkeypatch) -> None:
    assert cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", "routing")[0] == 0
    out = result(run_dir, "routing")
    assert (run_dir / "eval" / out["plot"]).read_bytes()[:4] == b"\x89PNG"
    assert len(out["roles"]) == 3 and np.allclose(np.sum(out["usage"], axis=1), 1, atol=1e-5)


def test_linear_on_folder_tree_with_in_domain(run_dir: Path, folder_data: Path, capsys,
                                              monkeypatch) -> None:
    code, _, err = cli(
        capsys, monkeypatch, "eval", str(run_dir), "--protocol", "linear",
        "--set", f"datasets=[{{name: folder, root: {folder_data}}}]",
        "--set", "in_domain={name: synthetic_shapes, length: 40, size: 16}",
        "--set", "grid=[0.01, 1.0]",
    )
    assert code == 0, err
    out = result(run_dir, "linear-folder")
    assert out["datasets"]["folder"]["images"] == {"train": 12, "test": 8, "val": 6}
    assert out["summary"]["folder"] >= 0.75  # red vs. blue
    assert out["summary"]["mean"] == out["summary"]["folder"]
    assert "in-domain synthetic_shapes" in out["summary"]
    assert list((run_dir / "eval" / "cache").glob("features-*.safetensors"))


def test_fewshot_one_and_five_shots(run_dir: Path, capsys, monkeypatch) -> None:
    code, _, err = cli(
        capsys, monkeypatch, "eval", str(run_dir), "--protocol", "fewshot",
        "--set", "datasets=[{name: synthetic_shapes, length: 80, size: 16}]",
        "--set", "queries=2", "--set", "num_episodes=20",
    )
    assert code == 0, err
    details = result(run_dir, "fewshot-synthetic_shapes")["datasets"]["synthetic_shapes"]
    assert set(details) == {"5-way 1-shot", "5-way 5-shot"}
    assert all(0 <= d["accuracy"] <= 1 and d["ci95"] >= 0 for d in details.values())


def test_checkpoint_and_backbone_export(run_dir: Path, capsys, monkeypatch) -> None:
    sidecar = sorted((run_dir / "checkpoints").glob("step-*.json"))[-1]
    assert cli(capsys, monkeypatch, "eval", str(sidecar), "--protocol", "nn1")[0] == 0
    backbone = str(run_dir / "backbone.safetensors")
    assert cli(capsys, monkeypatch, "eval", backbone, "--protocol", "knn")[0] == 0
    code, _, err = cli(capsys, monkeypatch, "eval", backbone, "--protocol", "routing")
    assert code == 2 and "holds the backbone only" in err


@pytest.mark.parametrize("protocol", ["linear", "fewshot"])
def test_missing_evaluation_data_is_one_line_exit_2(run_dir: Path, tmp_path: Path,
                                                     protocol: str, capsys, monkeypatch) -> None:
    missing = tmp_path / "nodata"
    code, _, err = cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", protocol,
                       "--set", f"root={missing}")
    assert code == 2
    assert str(missing) in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("protocol", "options", "message"),
    [
        ("linear", [], "protocol 'linear' needs data: name it with --set 'datasets=[NAME]'"),
        ("fewshot", [], "protocol 'fewshot' needs data"),
        ("linear", ["datasets=[cifar10]"],
         "dataset 'cifar10' needs its files: give --set root=PATH"),
    ],
)
def test_eval_asks_only_for_data_the_user_named(run_dir: Path, protocol: str,
                                                options: list[str], message: str, capsys,
                                                monkeypatch) -> None:
    sets = [arg for option in options for arg in ("--set", option)]
    code, _, err = cli(capsys, monkeypatch, "eval", str(run_dir), "--protocol", protocol, *sets)
    assert code == 2 and message in err
    assert "missing option 'root'" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--protocol", "knn", "--set", "colour=red"], "unknown option 'colour'"),
        (["--protocol", "lineer"], "did you mean 'linear'"),
    ],
)
def test_bad_protocol_or_option_exit_2(run_dir: Path, args: list[str], message: str, capsys,
                                       monkeypatch) -> None:
    code, _, err = cli(capsys, monkeypatch, "eval", str(run_dir), *args)
    assert code == 2 and message in err


def test_bad_stage_fails_before_training(tmp_path: Path) -> None:
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", tiny_recipe(
        tmp_path, evaluation=[{"protocol": "knn"}, {"protocol": "linear", "shots": 3}])))
    with pytest.raises(ConfigError, match=r"evaluation\[1\].*unknown option 'shots'"):
        check_stages(recipe)


def test_report_regenerates_with_plots(run_dir: Path, capsys, monkeypatch) -> None:
    (run_dir / "report.md").unlink()
    shutil.rmtree(run_dir / "report")
    code, _, err = cli(capsys, monkeypatch, "report", str(run_dir))
    assert code == 0, err
    report = (run_dir / "report.md").read_text()
    for name in ("losses", "monitor", "cca", "routing"):
        assert f"(report/{name}.png)" in report
        assert (run_dir / "report" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Evaluation" in report and "### cca" in report


def test_compare_prints_both_runs(run_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    other = tmp_path / "baseline"
    shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns("cache"))
    (other / "eval" / "knn.json").unlink()
    recipe = yaml.safe_load((other / "recipe.yaml").read_text())
    recipe["name"] = "baseline"
    recipe["heads"]["router"] = {"name": "mmoe"}
    recipe["optimizer"]["lr"] = 0.1
    (other / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, monkeypatch, "compare", str(run_dir), str(other))
    assert code == 0, err
    assert run_dir.name in out and "baseline" in out
    assert "final loss" in out and "knn: top1" in out and "cca: mean" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert "star" in rows["recipe heads.router.name"] and "mmoe" in rows["recipe heads.router.name"]
    assert "0.05" in rows["recipe optimizer.lr"] and "0.1" in rows["recipe optimizer.lr"]
    assert "recipe name" not in rows and "recipe seed" not in rows
    assert "convergence: eq steps to 95%" in rows and "convergence: inv last grad norm" in rows
    common = Path(os.path.commonpath([run_dir.parent, other.parent]))
    for name in ("convergence-loss.png", "convergence-grad-norm.png"):
        assert (common / name).read_bytes()[:4] == b"\x89PNG" and name in out


def test_report_and_compare_tolerate_a_torn_metrics_line(run_dir: Path, tmp_path: Path,
                                                         capsys, monkeypatch) -> None:
    """A crash during an append leaves half a line: readers skip it and say so."""
    torn = tmp_path / "torn"
    shutil.copytree(run_dir, torn, ignore=shutil.ignore_patterns("cache"))
    with (torn / "metrics.jsonl").open("a") as handle:
        handle.write('{"kind": "step", "epoch": 3, "st')
    code, _, err = cli(capsys, monkeypatch, "report", str(torn))
    assert code == 0, err
    assert "unreadable line" in err and "Traceback" not in err
    code, out, err = cli(capsys, monkeypatch, "compare", str(run_dir), str(torn))
    assert code == 0, err
    assert "torn" in out and "unreadable line" in err
