"""``report.md`` of a run directory: what was trained, how it went, what the evaluations gave.

Written after pretraining and by ``moeheads report RUN``, from the run's files only
(``recipe.yaml``, ``metrics.jsonl``, ``eval/*.json``). PNG plots go to ``report/``:

- ``losses.png``: the total loss and each task's loss over optimiser steps;
- ``monitor.png``: kNN and 1-NN accuracy of the probe images per epoch;
- ``cca.png``: mean canonical correlation between the task embeddings per epoch;
- ``routing.png``: the last epoch's expert usage per task (training images), experts
  labelled by role.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from moeheads.errors import ConfigError, writing
from moeheads.eval.plots import line_plot
from moeheads.eval.results import format_value, read_results
from moeheads.eval.routing import ExpertUsage, expert_roles, plot_expert_usage
from moeheads.heads import RoutingStats
from moeheads.rundir.metrics import read_metrics

REPORT_DIR = "report"
#: Record fields that are not measurements.
_META = {"kind", "time", "epoch", "step", "lr", "images_per_s", "feature_images_per_s", "routing"}
#: Monitor values of epoch records.
MONITOR_KEYS = ("knn_top1", "nn1_top1", "cca_mean")


def md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table (values through :func:`format_value`)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(format_value(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def loss_parts(record: dict[str, Any]) -> list[str]:
    """The loss and its per-task parts in a metrics record (names without ``/``)."""
    return [k for k, v in record.items()
            if k not in _META and k not in MONITOR_KEYS and "/" not in k
            and isinstance(v, int | float)]


def usage_from_record(routing: dict[str, Any]) -> ExpertUsage:
    """The :class:`ExpertUsage` of an epoch record's ``routing`` statistics."""
    tasks = list(routing["usage"])
    usage = torch.tensor([routing["usage"][t] for t in tasks], dtype=torch.float32)
    stats = RoutingStats({t: usage[i] for i, t in enumerate(tasks)}, routing.get("entropy", {}),
                         routing.get("usage_entropy", {}), routing.get("dead", {}),
                         routing.get("overlap", {}))
    return ExpertUsage(tasks, usage, expert_roles(usage, tasks), stats)


def _figure(lines: list[str], title: str, path: Path) -> None:
    lines += [f"![{title}]({REPORT_DIR}/{path.name})", ""]


def _training(run_dir: Path, records: list[dict[str, Any]]) -> list[str]:
    steps = [r for r in records if r.get("kind") == "step"]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    figures = run_dir / REPORT_DIR
    lines = ["## Training", ""]
    if not epochs and not steps:
        return [*lines, "No metrics recorded yet.", ""]
    if epochs:
        last = epochs[-1]
        lines.append(f"Last epoch: {last['epoch']} (step {last.get('step', '-')}).")
        lines.append("")
        shown = loss_parts(last) + [k for k in MONITOR_KEYS if k in last]
        lines += md_table(["metric", "value"], [[k, last[k]] for k in shown])
    source, x_name = (steps, "step") if steps else (epochs, "epoch")
    parts = loss_parts(source[-1])
    series = {p: ([r[x_name] for r in source], [r.get(p) for r in source]) for p in parts}
    _figure(lines, "Loss", line_plot(figures / "losses.png", series, title="Loss parts",
                                     xlabel=x_name, ylabel="loss"))
    for name, keys, title, ylabel in (
        ("monitor.png", ("knn_top1", "nn1_top1"), "Monitor accuracy (probe images)", "accuracy"),
        ("cca.png", ("cca_mean",), "Mean canonical correlation between tasks", "mean CCA"),
    ):
        found = [k for k in keys if any(r.get(k) is not None for r in epochs)]
        if found:
            series = {k: ([r["epoch"] for r in epochs], [r.get(k) for r in epochs])
                      for k in found}
            _figure(lines, title, line_plot(figures / name, series, title=title,
                                            xlabel="epoch", ylabel=ylabel))
    routed = [r for r in epochs if r.get("routing")]
    if routed:
        usage = usage_from_record(routed[-1]["routing"])
        title = f"Expert usage, epoch {routed[-1]['epoch']}"
        _figure(lines, "Expert usage", plot_expert_usage(usage, figures / "routing.png",
                                                         title=title))
        rows = [[t, usage.stats.entropy.get(t), ", ".join(map(str, usage.stats.dead.get(t, [])))
                 or "none"] for t in usage.tasks]
        lines += md_table(["task", "gate entropy (nats)", "dead experts"], rows)
        lines += [f"Expert roles: {', '.join(f'{n}: {r}' for n, r in enumerate(usage.roles))}.",
                  ""]
    return lines


def _evaluation(run_dir: Path) -> list[str]:
    results = read_results(run_dir)
    lines = ["## Evaluation", ""]
    if not results:
        return [*lines, "No evaluation results (`moeheads eval RUN --protocol NAME`).", ""]
    for stem, record in results.items():
        result = record.get("result", {})
        lines += [f"### {stem}", ""]
        details = result.get("datasets")
        if record.get("protocol") == "linear" and details:
            rows = [[name, d["metric"], d["test_accuracy"], d["l2"]]
                    for name, d in {**details, **result.get("in_domain", {})}.items()]
            lines += md_table(["dataset", "metric", "test accuracy", "L2 weight"], rows)
        lines += md_table(["metric", "value"], list(map(list, result.get("summary", {}).items())))
        if result.get("plot"):
            lines += [f"![{stem}](eval/{result['plot']})", ""]
        lines += _expert_rows(result.get("retrieval"))
        lines += [f"![{stem}: {name}](eval/{name})\n" for name in result.get("figures", [])]
    return lines


def _expert_rows(retrieval: dict[str, Any] | None) -> list[str]:
    """The routing stage's per-expert neighbour scores as a table."""
    if not retrieval:
        return []
    rows = retrieval["experts"]
    keys = [k for k in rows[0] if k not in ("expert", "role")]
    return [f"Nearest {retrieval['k']} neighbours of each expert's outputs (views):", "",
            *md_table(["expert", "role", *keys], [[r["expert"], r["role"], *(r[k] for k in keys)]
                                                  for r in rows])]


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md`` and its plots into a run directory; returns the report's path.

    Raises:
        ConfigError: ``run_dir`` is not a run directory.
    """
    run_dir = Path(run_dir)
    recipe_file = run_dir / "recipe.yaml"
    if not recipe_file.is_file():
        raise ConfigError(f"{recipe_file} not found: {run_dir} is not a run directory")
    recipe = yaml.safe_load(recipe_file.read_text()) or {}
    heads = recipe.get("heads", {})
    tasks = ", ".join(f"{t} ({c.get('name')}, weight {c.get('weight', 1.0)})"
                      for t, c in recipe.get("tasks", {}).items())
    lines = [f"# {recipe.get('name', run_dir.name)}", ""]
    lines += md_table(["", ""], [
        ["backbone", recipe.get("backbone", {}).get("name")],
        ["router", heads.get("router", {}).get("name")],
        ["experts", heads.get("num_experts")],
        ["tasks", tasks],
        ["pretraining data", recipe.get("data", {}).get("dataset", {}).get("name")],
        ["epochs", recipe.get("trainer", {}).get("epochs")],
        ["batch size", recipe.get("trainer", {}).get("batch_size")],
    ])
    lines += _training(run_dir, read_metrics(run_dir / "metrics.jsonl"))
    lines += _evaluation(run_dir)
    path = run_dir / "report.md"
    with writing(path, "report"):
        path.write_text("\n".join(lines).rstrip() + "\n")
    return path
