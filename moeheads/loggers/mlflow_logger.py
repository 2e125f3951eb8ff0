"""``mlflow``: MLflow, in a local file store by default."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from moeheads.loggers.base import LOGGERS, flatten, require_package


@LOGGERS.register("mlflow")
class MLflowLogger:
    """MLflow, in a local file store by default (``mlflow ui --backend-store-uri <run>/mlruns``)

    Args:
        run_dir: The run directory.
        run_name: The recipe's name (the MLflow run name).
        config: The resolved recipe (logged as parameters, flattened).
        tracking_uri: The tracking store (default ``file:<run>/mlruns``).
        experiment: The MLflow experiment (default: the recipe's name).
    """

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any],
                 tracking_uri: str | None = None, experiment: str | None = None) -> None:
        run_dir = Path(run_dir)
        uri = tracking_uri or (run_dir / "mlruns").resolve().as_uri()
        if uri.startswith("file:"):  # MLflow 3 asks for an opt-in to its file store
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        tracking = require_package("mlflow.tracking", "mlflow")
        entities = require_package("mlflow.entities", "mlflow")
        self._metric = entities.Metric
        self.client = tracking.MlflowClient(tracking_uri=uri)
        name = experiment or run_name
        found = self.client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else self.client.create_experiment(name)
        id_file = run_dir / ".mlflow_run_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else None
        if run_id is None or not self._exists(run_id):
            run = self.client.create_run(experiment_id, run_name=run_name)
            run_id = run.info.run_id
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(run_id)
            params = [entities.Param(k, str(v)[:250]) for k, v in flatten(config).items()]
            for start in range(0, len(params), 100):
                self.client.log_batch(run_id, params=params[start:start + 100])
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id

    def _exists(self, run_id: str) -> bool:
        try:
            self.client.get_run(run_id)
        except Exception:  # any lookup failure: start a new run
            return False
        return True

    def log(self, step: int, values: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        metrics = [self._metric(mlflow_name(k), v, now, step) for k, v in values.items()]
        for start in range(0, len(metrics), 500):
            self.client.log_batch(self.run_id, metrics=metrics[start:start + 500])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def mlflow_name(name: str) -> str:
    """``train/inv/weighted`` -> ``train/inv.weighted``: the file store keeps a metric per
    file, so a name cannot also be the folder of another (``train/inv``).
    """
    name = re.sub(r"[^\w\-. :/]", "-", name)  # e.g. routing overlap "inv|eq" -> "inv-eq"
    prefix, _, rest = name.partition("/")
    return f"{prefix}/{rest.replace('/', '.')}" if rest else prefix
