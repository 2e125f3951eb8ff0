"""Experiment loggers: TensorBoard, Weights & Biases and MLflow, fed from the metrics file.

Every metric a run writes goes through one place,
[`MetricsLog.write`][moeheads.rundir.metrics.MetricsLog.write], which appends it to
``metrics.jsonl`` and hands the record to the loggers a recipe names:

```yaml
loggers:
  - {name: tensorboard}                   # <run>/tensorboard/
  - {name: wandb, project: star}          # offline by default, under <run>/wandb/
  - {name: mlflow}                        # a local file store, <run>/mlruns/
```

Each needs its package (``pip install 'moeheads[loggers]'``). A logger receives
flattened scalars: step lines as ``train/<name>``, epoch summaries as ``epoch/<name>``
(routing statistics as ``epoch/routing/...``), at the global optimiser step. MLflow's
file store keeps one file per metric, so below the prefix its names use dots
(``train/inv.weighted``).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Literal, Protocol

from moeheads.errors import ConfigError
from moeheads.registry import Registry

#: Arguments the run supplies to every logger (not recipe options).
PROVIDED = ("run_dir", "run_name", "config")
_META = {"kind", "time", "epoch", "step"}
_PREFIX = {"step": "train", "epoch": "epoch"}


class Logger(Protocol):
    """What a logger does with the run's metrics."""

    def log(self, step: int, values: dict[str, float]) -> None:
        """Record scalars at a global step."""

    def close(self) -> None:
        """Flush and finish."""


LOGGERS: Registry[Logger] = Registry("logger")
"""Registry of experiment loggers: ``LOGGERS.list()`` names them."""


def scalars(record: dict[str, Any]) -> tuple[int, dict[str, float]]:
    """A metrics record as ``(step, {"<prefix>/<name>": value})`` with finite numbers only.

    Example:
        >>> scalars({"kind": "epoch", "epoch": 1, "step": 40, "loss": 2.5,
        ...          "routing": {"inv": {"entropy": 1.2}}, "note": "x"})
        (40, {'epoch/loss': 2.5, 'epoch/routing/inv/entropy': 1.2})
    """
    prefix = _PREFIX.get(str(record.get("kind")), str(record.get("kind")))
    values: dict[str, float] = {}

    def visit(value: Any, name: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                visit(inner, f"{name}/{key}")
        elif (isinstance(value, int | float) and not isinstance(value, bool)
              and math.isfinite(value)):
            values[name] = float(value)

    for key, value in record.items():
        if key not in _META:
            visit(value, f"{prefix}/{key}")
    return int(record.get("step") or 0), values


def create_loggers(components: list[Any], run_dir: Path, run_name: str,
                   config: dict[str, Any]) -> list[Logger]:
    """The loggers a recipe names (``Component`` objects with ``name`` and options)."""
    return [
        LOGGERS.create(c.name, run_dir=run_dir, run_name=run_name, config=config, **c.options)
        for c in components
    ]


def _require(module: str, logger: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"logger {logger!r} needs the {module.split('.')[0]!r} package: "
            "pip install 'moeheads[loggers]'"
        ) from None


@LOGGERS.register("tensorboard")
class TensorBoardLogger:
    """TensorBoard event files (``tensorboard --logdir runs``)

    Args:
        run_dir: The run directory.
        run_name: The recipe's name.
        config: The resolved recipe, written once as text.
        log_dir: Where the event files go (default ``<run>/tensorboard``).
    """

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any],
                 log_dir: Path | None = None) -> None:
        tensorboard = _require("torch.utils.tensorboard", "tensorboard")
        self.log_dir = Path(log_dir) if log_dir is not None else Path(run_dir) / "tensorboard"
        self.writer = tensorboard.SummaryWriter(str(self.log_dir))
        self.writer.add_text("recipe", f"```\n{_yaml(config)}\n```")

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


@LOGGERS.register("wandb")
class WandbLogger:
    """Weights & Biases, offline by default (``wandb sync <run>/wandb/offline-run-*``)

    Args:
        run_dir: The run directory; W&B writes under ``<run>/wandb``.
        run_name: The recipe's name (the W&B run name).
        config: The resolved recipe (the W&B config).
        project: The W&B project.
        entity: The W&B entity (user or team).
        mode: ``offline`` (files only), ``online`` or ``disabled``.
        tags: Run tags.
    """

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any],
                 project: str = "moeheads", entity: str | None = None,
                 mode: Literal["offline", "online", "disabled"] = "offline",
                 tags: list[str] | None = None) -> None:
        wandb = _require("wandb", "wandb")
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, entity=entity, name=run_name, mode=mode,
                              dir=str(run_dir), config=config, tags=tags,
                              id=_run_id(run_dir, "wandb"), resume="allow", reinit=True)

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


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
        tracking = _require("mlflow.tracking", "mlflow")
        entities = _require("mlflow.entities", "mlflow")
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
            params = [entities.Param(k, str(v)[:250]) for k, v in _flat(config).items()]
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
        import time

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


def _run_id(run_dir: Path, tool: str) -> str:
    """A run id kept in the run directory, so a resumed run continues the same logger run."""
    path = run_dir / f".{tool}_run_id"
    if path.is_file():
        return path.read_text().strip()
    import uuid

    run_id = uuid.uuid4().hex[:12]
    path.write_text(run_id)
    return run_id


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data} if prefix else {}


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False)
