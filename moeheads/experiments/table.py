"""A sweep's results: one row per setting, the mean and 95% interval over its seeds.

``moeheads compare SWEEP_FOLDER`` reads ``sweep.yaml`` and each run's results, and writes
``compare.md``, ``compare.csv`` and ``compare.png`` (each headline metric against the
swept value, with the intervals as error bars) into the sweep folder.

Example:
    >>> from moeheads.experiments.table import compare_sweep
    >>> table = compare_sweep("runs/study_fashion_mnist")  # doctest: +SKIP
    >>> table.markdown_path  # doctest: +SKIP
    PosixPath('runs/study_fashion_mnist/compare.md')
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from moeheads.errors import ConfigError
from moeheads.eval.compare import run_values
from moeheads.eval.results import read_results
from moeheads.experiments.plan import MANIFEST
from moeheads.experiments.plot import plot_sweep
from moeheads.numerics.intervals import MeanInterval, mean_interval

__all__ = ["HEADLINE", "SettingRow", "SweepTable", "compare_sweep", "headline",
           "recipe_differences"]

#: Headline metrics, in table order: (column, protocol, metric key or key prefix ending in
#: a space). A result ``<protocol>[-<dataset>].json`` gives keys ``<stem>: <metric>``.
HEADLINE: list[tuple[str, str, str]] = [
    ("linear mean", "linear", "mean"),
    ("linear in-domain", "linear", "in-domain "),
    ("kNN top1", "knn", "top1"),
    ("CCA", "cca", "mean"),
    ("SVCCA", "cca", "svcca"),
    ("PWCCA", "cca", "pwcca"),
    ("top-k CCA", "cca", "top_k"),
    ("equivariance R2", "equivariance", "mean R2 absolute"),
    ("equivariance R2 diff", "equivariance", "mean R2 difference"),
    ("retrieval MRR (fitted)", "equivariance", "fitted MRR"),
    ("prediction error (fitted)", "equivariance", "fitted prediction error"),
    ("retrieval MRR (own)", "equivariance", "own MRR"),
    ("prediction error (own)", "equivariance", "own prediction error"),
    ("routing overlap", "routing", "overlap "),
    ("experts shared", "routing", "experts shared"),
    ("inv experts kNN", "routing", "inv experts knn_accuracy"),
    ("eq experts kNN", "routing", "eq experts knn_accuracy"),
    ("inv experts colour R2", "routing", "inv experts r2_colour"),
    ("eq experts colour R2", "routing", "eq experts r2_colour"),
    ("inv steps to 95%", "convergence", "inv steps to 95%"),
    ("eq steps to 95%", "convergence", "eq steps to 95%"),
]
#: Recipe fields that differ by construction, or do not change training (evaluation stages).
_IGNORED = ("name", "seed", "output_dir", "evaluation")


def headline(key: str) -> str | None:
    """The headline column a metric key (``"cca-stl10: mean"``) belongs to, or ``None``."""
    stem, sep, metric = key.partition(": ")
    if not sep:
        return None
    protocol = stem.split("-", 1)[0]
    for column, name, wanted in HEADLINE:
        if protocol == name and (metric == wanted
                                 or (wanted.endswith(" ") and metric.startswith(wanted))):
            return column
    return None


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: data}


def recipe_differences(recipes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Setting -> the recipe fields (dotted) whose values differ between settings."""
    flat = {s: _flatten(r) for s, r in recipes.items()}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    varying = [k for k in keys if k.split(".")[0] not in _IGNORED
               and len({repr(f.get(k, "-")) for f in flat.values()}) > 1]
    return {s: {k: f.get(k, "-") for k in varying} for s, f in flat.items()}


def _metrics(folder: Path) -> dict[str, float]:
    """Numeric metrics of one run: ``run_values`` plus the routing overlap of two tasks."""
    values = {k: float(v) for k, v in run_values(folder).items()
              if isinstance(v, int | float) and not isinstance(v, bool)}
    for stem, record in read_results(folder).items():
        if stem.split("-", 1)[0] == "routing":
            overlaps = record.get("result", {}).get("stats", {}).get("overlap", {})
            values.update({f"{stem}: overlap {pair}": float(v) for pair, v in overlaps.items()})
    return values


@dataclass(frozen=True)
class SettingRow:
    """One setting's row.

    Attributes:
        setting: The setting's label.
        differences: The recipe fields that set it apart (dotted field -> value).
        seeds: The seeds whose results were found.
        metrics: Metric -> mean and interval over those seeds.
    """

    setting: str
    differences: dict[str, Any]
    seeds: list[int]
    metrics: dict[str, MeanInterval]


@dataclass(frozen=True)
class SweepTable:
    """A sweep's comparison and the files it was written to."""

    rows: list[SettingRow]
    columns: list[str]
    markdown_path: Path
    csv_path: Path
    plot_path: Path | None
    missing: list[str]

    def headline_columns(self) -> list[str]:
        """The headline metrics present in some row, in :data:`HEADLINE` order."""
        order = [c for c, _, _ in HEADLINE]
        found = {headline(k) for k in self.columns} - {None}
        return [c for c in order if c in found]


def _cell(interval: MeanInterval | None) -> str:
    if interval is None:
        return "-"
    if math.isnan(interval.half_width):
        return f"{interval.mean:.4g}"
    return f"{interval.mean:.4g} ± {interval.half_width:.2g}"


def _headline_interval(row: SettingRow, column: str) -> MeanInterval | None:
    return next((row.metrics[k] for k in row.metrics if headline(k) == column), None)


def _markdown(table: SweepTable, sweep: str) -> str:
    diff_keys = list(dict.fromkeys(k for r in table.rows for k in r.differences))
    heads = table.headline_columns()
    header = ["setting", *diff_keys, "seeds", *heads]
    lines = [f"# Sweep {sweep}", "",
             "Mean ± half width of the 95% Student-t interval over seeds.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        cells = [row.setting, *(str(row.differences.get(k, "-")) for k in diff_keys),
                 str(len(row.seeds)), *(_cell(_headline_interval(row, c)) for c in heads)]
        lines.append("| " + " | ".join(cells) + " |")
    if table.missing:
        lines += ["", "Runs without results (not finished): " + ", ".join(table.missing)]
    if table.plot_path is not None:
        lines += ["", f"![metrics]({table.plot_path.name})"]
    return "\n".join(lines) + "\n"


def _write_csv(table: SweepTable) -> None:
    diff_keys = list(dict.fromkeys(k for r in table.rows for k in r.differences))
    with table.csv_path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["setting", *diff_keys, "seeds",
                         *(f"{c} {part}" for c in table.columns
                           for part in ("mean", "ci95", "n"))])
        for row in table.rows:
            cells: list[Any] = [row.setting, *(row.differences.get(k, "-") for k in diff_keys),
                                " ".join(map(str, row.seeds))]
            for column in table.columns:
                interval = row.metrics.get(column)
                cells += (["", "", 0] if interval is None
                          else [interval.mean, interval.half_width, interval.n])
            writer.writerow(cells)


def compare_sweep(folder: str | Path, plot: bool = True) -> SweepTable:
    """Compare a sweep's settings and write ``compare.md``, ``compare.csv`` and ``compare.png``.

    Raises:
        ConfigError: No ``sweep.yaml`` in ``folder``, or no run with results.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ConfigError(f"{folder} is not a sweep folder (no {MANIFEST})")
    manifest = yaml.safe_load(manifest_path.read_text()) or {}
    runs = manifest.get("runs") or []
    by_setting: dict[str, list[tuple[int, dict[str, float]]]] = {}
    recipes: dict[str, dict[str, Any]] = {}
    values: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for entry in runs:
        run_dir = folder / entry["name"]
        if not read_results(run_dir) or not (run_dir / "recipe.yaml").is_file():
            missing.append(entry["name"])
            continue
        setting = entry["setting"]
        by_setting.setdefault(setting, []).append((entry["seed"], _metrics(run_dir)))
        recipes.setdefault(setting, yaml.safe_load((run_dir / "recipe.yaml").read_text()))
        values.setdefault(setting, entry.get("values") or {})
    if not by_setting:
        raise ConfigError(f"{folder}: no run of the sweep has results yet")
    differences = recipe_differences(recipes)
    columns = list(dict.fromkeys(k for found in by_setting.values() for _, m in found for k in m))
    rows = []
    for setting, found in by_setting.items():
        metrics = {}
        for column in columns:
            samples = [m[column] for _, m in found if column in m and math.isfinite(m[column])]
            if samples:
                metrics[column] = mean_interval(samples)
        rows.append(SettingRow(setting, differences[setting], [s for s, _ in found], metrics))
    table = SweepTable(rows, columns, folder / "compare.md", folder / "compare.csv", None,
                       missing)
    plot_path = None
    if plot:
        series = {c: [_headline_interval(r, c) for r in rows] for c in table.headline_columns()}
        plot_path = plot_sweep(folder / "compare.png", [r.setting for r in rows],
                               [values[r.setting] for r in rows], series,
                               title=f"Sweep {folder.name}")
    table = SweepTable(rows, columns, table.markdown_path, table.csv_path, plot_path, missing)
    table.markdown_path.write_text(_markdown(table, folder.name))
    _write_csv(table)
    return table
