"""Experiment loggers write real TensorBoard, W&B (offline) and MLflow (file store) files."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import pytest

import moeheads
from moeheads.errors import ConfigError
from moeheads.loggers import LOGGERS, create_loggers, scalars
from moeheads.recipe.schema import Component
from moeheads.rundir.metrics import MetricsLog
from tests.train.recipes import tiny_recipe

RECORDS = [
    {"kind": "step", "epoch": 1, "step": 1, "loss": 2.0, "lr": 0.1},
    {"kind": "step", "epoch": 1, "step": 2, "loss": 1.5, "lr": 0.1},
    {"kind": "epoch", "epoch": 1, "step": 2, "loss": 1.75, "knn_top1": None,
     "routing": {"inv": {"entropy": 0.5}}},
]


@pytest.fixture(autouse=True)
def quiet_wandb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")


def write(run_dir: Path, names: list[str]) -> None:
    components = [Component(name=name) for name in names]
    log = MetricsLog(run_dir / "metrics.jsonl",
                     loggers=create_loggers(components, run_dir, "tiny", {"seed": 3}))
    for record in RECORDS:
        log.write(record["kind"], **{k: v for k, v in record.items() if k != "kind"})
    log.close()


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    ).EventAccumulator(str(log_dir))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def wandb_history(run_dir: Path, rows: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
    """History rows of W&B's offline ``.wandb`` file, waiting until it holds ``rows`` of them
    (W&B's service process may still be writing it after ``finish()`` returned)."""
    deadline = time.monotonic() + timeout
    while True:
        found = _wandb_rows(run_dir)
        if len(found) >= rows or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _wandb_rows(run_dir: Path) -> list[dict[str, Any]]:
    """History rows of W&B's offline ``.wandb`` file (a LevelDB-style record log)."""
    pb = pytest.importorskip("wandb.proto.wandb_internal_pb2")
    paths = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    if not paths:
        return []
    (path,) = paths
    data, pos, block, chunks, pending = path.read_bytes(), 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            chunks.append(pending)
    rows = []
    for chunk in chunks:
        record = pb.Record()
        record.ParseFromString(chunk)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def mlflow_history(run_dir: Path, name: str) -> list[tuple[int, float]]:
    tracking = pytest.importorskip("mlflow.tracking")
    client = tracking.MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    run_id = (run_dir / ".mlflow_run_id").read_text().strip()
    return [(m.step, m.value) for m in client.get_metric_history(run_id, name)]


def test_scalars_flatten_and_drop_non_numbers() -> None:
    assert scalars(RECORDS[2]) == (2, {"epoch/loss": 1.75, "epoch/routing/inv/entropy": 0.5})


def test_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    write(tmp_path, ["tensorboard"])
    found = tensorboard_scalars(tmp_path / "tensorboard")
    assert found["train/loss"] == [(1, 2.0), (2, 1.5)]
    assert found["epoch/routing/inv/entropy"] == [(2, 0.5)]


def test_wandb_offline(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    write(tmp_path, ["wandb"])
    rows = wandb_history(tmp_path, rows=2)
    assert [(r["_step"], r["train/loss"]) for r in rows if "train/loss" in r] == [(1, 2), (2, 1.5)]
    assert any(r.get("epoch/loss") == 1.75 for r in rows)


def test_mlflow_file_store_and_resume(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    write(tmp_path, ["mlflow"])
    write(tmp_path, ["mlflow"])  # a resumed run continues the same MLflow run
    assert mlflow_history(tmp_path, "train/loss") == [(1, 2.0), (2, 1.5)] * 2
    assert mlflow_history(tmp_path, "epoch/loss") == [(2, 1.75), (2, 1.75)]


def test_a_recipe_chooses_its_loggers(tmp_path: Path) -> None:
    for package in ("tensorboard", "wandb", "mlflow"):
        pytest.importorskip(package)
    recipe = tiny_recipe(tmp_path, trainer__epochs=1, monitor__knn_every=0,
                         monitor__cca_every=0,
                         loggers=[{"name": "tensorboard"}, {"name": "wandb", "project": "t"},
                                  {"name": "mlflow", "experiment": "tiny-exp"}])
    results = moeheads.run(recipe)
    steps = results.steps
    assert [s for s, _ in tensorboard_scalars(results.run_dir / "tensorboard")["train/loss"]] \
        == list(range(1, steps + 1))
    assert sum("train/loss" in r for r in wandb_history(results.run_dir, rows=steps)) == steps
    assert len(mlflow_history(results.run_dir, "train/loss")) == steps
    assert len(mlflow_history(results.run_dir, "epoch/loss")) == 1


def test_loggers_do_not_change_the_recipe_hash(tmp_path: Path) -> None:
    plain = moeheads.validate(tiny_recipe(tmp_path))
    logged = moeheads.validate(tiny_recipe(tmp_path, loggers=[{"name": "tensorboard"}]))
    assert plain.hash() == logged.hash()


@pytest.mark.parametrize(("logger", "message"), [
    ({"name": "tensorbord"}, "did you mean 'tensorboard'"),
    ({"name": "wandb", "mode": "online-ish"}, "mode"),
    ({"name": "mlflow", "colour": "red"}, "unknown option 'colour'"),
])
def test_bad_loggers_are_recipe_errors(tmp_path: Path, logger: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        moeheads.validate(tiny_recipe(tmp_path, loggers=[logger]))


def test_the_registry_lists_three() -> None:
    assert LOGGERS.list() == ["mlflow", "tensorboard", "wandb"]
