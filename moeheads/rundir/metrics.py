"""A run's metrics file: ``metrics.jsonl``, one JSON object per line.

It is the one place metrics are written: each record also goes to the experiment loggers
a recipe names (TensorBoard, W&B, MLflow; see [`moeheads.loggers`][moeheads.loggers]).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from moeheads.errors import writing
from moeheads.loggers import Logger, scalars


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` (rank 0 only).

    A line left incomplete by a crash during an append (a torn line) is cut off before the
    first new record, so a record is never glued onto it.

    Args:
        path: The file; ``None`` writes nothing (other ranks).
        report: Where a note about a cut-off torn line goes.
        loggers: Experiment loggers that receive every record's scalars.
    """

    def __init__(self, path: Path | None, report: Callable[[str], None] = _warn, *,
                 loggers: Sequence[Logger] = ()) -> None:
        self.path = path
        self.loggers = list(loggers)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            cut = _cut_torn_tail(path)
            if cut:
                report(f"{path}: removed an incomplete last line ({cut} bytes) left by a crash")

    def write(self, kind: str, **values: Any) -> None:
        """Append ``{"kind": kind, "time": ..., **values}``; non-finite floats become null."""
        if self.path is None:
            return
        record = {"kind": kind, "time": round(time.time(), 3), **_finite(values)}
        with writing(self.path, "metrics"), self.path.open("a") as handle:
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

    def rewind(self, step: int) -> int:
        """Drop the records written after optimiser step ``step`` (a resumed run writes them
        again), so the file holds one history; returns how many were dropped."""
        if self.path is None or not self.path.is_file():
            return 0
        records = read_metrics(self.path)
        kept = [r for r in records if r.get("step", 0) <= step]
        if len(kept) < len(records):
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            tmp.replace(self.path)
        return len(records) - len(kept)


def _cut_torn_tail(path: Path) -> int:
    """Truncate ``path`` after its last newline; the number of bytes cut."""
    if not path.is_file():
        return 0
    with path.open("rb+") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            return 0
        handle.seek(max(size - 1, 0))
        if handle.read(1) == b"\n":
            return 0
        handle.seek(0)
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        handle.truncate(keep)
        return size - keep


def read_metrics(path: Path, report: Callable[[str], None] = _warn) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl`` file (an empty list when it does not exist).

    Lines that are not JSON objects (a torn last line left by a crash, a damaged line) are
    skipped, and ``report`` is told which.
    """
    if not path.is_file():
        return []
    records, bad = [], []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            bad.append(number)
    if bad:
        lines = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        report(f"{path}: skipped {len(bad)} unreadable line(s) (line {lines})")
    return records


def _finite(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: _finite(v) for k, v in values.items()}
    if isinstance(values, list | tuple):
        return [_finite(v) for v in values]
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values
