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

One logger a module (:mod:`~moeheads.loggers.tensorboard_logger`,
:mod:`~moeheads.loggers.wandb_logger`, :mod:`~moeheads.loggers.mlflow_logger`); the
contract, registry and record flattening in :mod:`~moeheads.loggers.base`.
"""

from moeheads.loggers.base import LOGGERS, PROVIDED, Logger, create_loggers, scalars
from moeheads.loggers.mlflow_logger import MLflowLogger, mlflow_name
from moeheads.loggers.tensorboard_logger import TensorBoardLogger
from moeheads.loggers.wandb_logger import WandbLogger

__all__ = [
    "LOGGERS",
    "PROVIDED",
    "Logger",
    "MLflowLogger",
    "TensorBoardLogger",
    "WandbLogger",
    "create_loggers",
    "mlflow_name",
    "scalars",
]
