"""Side-by-side comparison of runs (``moeheads compare RUN_A RUN_B ...``).

Rows: first the recipe fields whose values differ between the runs (``recipe
heads.router.name``), then the last epoch's loss parts and monitor values (kNN, 1-NN,
CCA), each task's convergence (:mod:`~moeheads.eval.convergence`), then every headline
number of every evaluation result any of the runs holds; ``-`` where a run lacks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from moeheads.errors import ConfigError
from moeheads.eval.convergence import run_convergence
from moeheads.eval.report import MONITOR_KEYS, loss_parts
from moeheads.eval.results import format_value, read_results
from moeheads.rundir.metrics import read_metrics


def run_values(run_dir: Path) -> dict[str, Any]:
    """Metric name -> value for one run (``training <name>`` and ``<result> <key>`` rows)."""
    if not (run_dir / "recipe.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no recipe.yaml)")
    epochs = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("kind") == "epoch"]
    values: dict[str, Any] = {}
    if epochs:
        last = epochs[-1]
        values["epochs"] = last["epoch"]
        for key in loss_parts(last):
            values[f"final {key}"] = last[key]
        for key in MONITOR_KEYS:
            found = [r[key] for r in epochs if r.get(key) is not None]
            if found:
                values[key] = found[-1]
    for task, found in run_convergence(run_dir).items():
        values[f"convergence: {task} steps to 95%"] = found["steps"]
        if found["last_grad_norm"] is not None:
            values[f"convergence: {task} last grad norm"] = found["last_grad_norm"]
    for stem, record in read_results(run_dir).items():
        for key, value in record.get("result", {}).get("summary", {}).items():
            values[f"{stem}: {key}"] = value
    return values


#: Recipe fields that differ between runs without changing what was trained.
_SAME_RUN_FIELDS = ("name", "output_dir")


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested mappings as ``{"a.b.c": value}`` (lists stay values)."""
    if not isinstance(data, dict) or not data:
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def recipe_differences(run_dirs: list[Path]) -> dict[str, list[Any]]:
    """``field.path -> [value per run]`` for each recipe field whose values differ
    (a field a run's recipe lacks counts as ``None``)."""
    recipes = [flatten(yaml.safe_load((Path(d) / "recipe.yaml").read_text()) or {})
               for d in run_dirs]
    fields = list(dict.fromkeys(k for recipe in recipes for k in recipe))
    values = {field: [recipe.get(field) for recipe in recipes] for field in fields
              if field.split(".")[0] not in _SAME_RUN_FIELDS}
    return {field: vals for field, vals in values.items() if len({repr(v) for v in vals}) > 1}


def compare_table(run_dirs: list[Path]) -> Table:
    """A rich table with one column per run: the recipe fields that differ, then one row
    per metric any run has."""
    columns = {str(d): run_values(d) for d in run_dirs}
    differences = {f"recipe {field}": values
                   for field, values in recipe_differences(run_dirs).items()}
    names = list(dict.fromkeys(k for values in columns.values() for k in values))
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    labels = [Path(d).name for d in columns]
    for label, directory in zip(labels, columns, strict=True):
        table.add_column(label if labels.count(label) == 1 else directory, justify="right")
    for name, values in differences.items():
        table.add_row(name, *(_recipe_value(v) for v in values),
                      end_section=name == list(differences)[-1])
    for name in names:
        table.add_row(name, *(format_value(values.get(name)) for values in columns.values()))
    return table


def _recipe_value(value: Any) -> str:
    if value is None:
        return "-"
    if not isinstance(value, list | dict):
        return str(value)
    return yaml.safe_dump(value, default_flow_style=True).strip()
