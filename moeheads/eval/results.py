"""Evaluation result files ``<run>/eval/<protocol>[-<dataset>].json``: writing, reading, showing."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from moeheads.errors import writing


def plain(value: Any) -> Any:
    """``value`` as JSON data: tensors to lists, non-finite floats to ``None``."""
    if isinstance(value, torch.Tensor):
        return plain(value.tolist())
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path | torch.device):
        return str(value)
    return value


def write_result(eval_dir: Path, stem: str, record: dict[str, Any]) -> Path:
    """Write ``record`` (made plain, with a UTC timestamp) to ``eval_dir/<stem>.json``."""
    eval_dir.mkdir(parents=True, exist_ok=True)
    path = eval_dir / f"{stem}.json"
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    tmp = path.with_suffix(".json.tmp")
    try:
        with writing(path, "evaluation result"):
            tmp.write_text(json.dumps(plain({**record, "created": created}), indent=2) + "\n")
            tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_results(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every result file of a run: file stem -> record (sorted by stem)."""
    eval_dir = Path(run_dir) / "eval"
    if not eval_dir.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(eval_dir.glob("*.json"))}


def format_value(value: Any) -> str:
    """A number with four significant digits; ``-`` for a missing one."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def summary_table(title: str, summary: dict[str, Any]) -> Table:
    """A two-column rich table of a result's headline numbers."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, format_value(value))
    return table
