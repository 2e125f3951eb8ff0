"""A run's metrics file: ``metrics.jsonl``, one JSON object per line.

It is the one place metrics are written: each record also goes to the experiment loggers
a recipe names (TensorBoard, W&B, MLflow; see [`moeheads.loggers`][moeheads.loggers]).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moeheads.loggers import Logger, scalars


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` (rank 0 only).

    Args:
        path: The file; ``None`` writes nothing (other ranks).
        loggers: Experiment loggers that receive every record's scalars.
    """

    def __init__(self, path: Path | None, *, loggers: Sequence[Logger] = ()) -> None:
        self.path = path
        self.loggers = list(loggers)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, kind: str, **values: Any) -> None:
        """Append ``{"kind": kind, "time": ..., **values}``; non-finite floats become null."""
        if self.path is None:
            return
        record = {"kind": kind, "time": round(time.time(), 3), **_finite(values)}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.loggers:
            step, values = scalars(record)
            for logger in self.loggers:
                logger.log(step, values)

    def close(self) -> None:
        """Finish the experiment loggers (the file needs no closing)."""
        loggers, self.loggers = self.loggers, []
        for logger in loggers:
            logger.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl`` file (an empty list when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _finite(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: _finite(v) for k, v in values.items()}
    if isinstance(values, list | tuple):
        return [_finite(v) for v in values]
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values
