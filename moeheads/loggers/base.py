"""The logger contract and registry, and how a metrics record becomes scalars."""

from __future__ import annotations

import importlib
import math
import uuid
from pathlib import Path
from typing import Any, Protocol

import yaml

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


def require_package(module: str, logger: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"logger {logger!r} needs the {module.split('.')[0]!r} package: "
            "pip install 'moeheads[loggers]'"
        ) from None


def run_id_file(run_dir: Path, tool: str) -> str:
    """A run id kept in the run directory, so a resumed run continues the same logger run."""
    path = run_dir / f".{tool}_run_id"
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    path.write_text(run_id)
    return run_id


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data} if prefix else {}


def as_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
