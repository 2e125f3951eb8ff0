"""The plot of a sweep: each headline metric against the swept value, with error bars.

The x axis is the swept value when exactly one swept field is numeric (the other
fields, if any, make one line each); otherwise it lists the settings in sweep order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from moeheads.numerics.intervals import MeanInterval

__all__ = ["plot_sweep", "x_axis"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def x_axis(settings: Sequence[str], values: Sequence[Mapping[str, Any]]
           ) -> tuple[str | None, list[float], list[str]]:
    """``(x label, x per setting, line label per setting)``; label ``None``: categorical."""
    keys = list(dict.fromkeys(k for v in values for k in v))
    numeric = [k for k in keys if k != "setting" and all(_number(v.get(k)) for v in values)]
    if len(numeric) != 1 or len(set(settings)) < 2:
        return None, [float(i) for i in range(len(settings))], ["" for _ in settings]
    key = numeric[0]
    lines = [", ".join(f"{k.rsplit('.', 1)[-1]}={v[k]}" for k in keys if k != key and k in v)
             for v in values]
    return key, [float(v[key]) for v in values], lines


def plot_sweep(
    path: Path,
    settings: Sequence[str],
    values: Sequence[Mapping[str, Any]],
    series: Mapping[str, Sequence[MeanInterval | None]],
    title: str = "Sweep",
) -> Path | None:
    """Write one panel per metric (mean with 95% interval bars) to ``path``; ``None`` if
    there is nothing to plot."""
    series = {m: s for m, s in series.items() if any(i is not None for i in s)}
    if not series:
        return None
    key, xs, lines = x_axis(settings, values)
    columns = min(3, len(series))
    rows = math.ceil(len(series) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows + 0.4))
    FigureCanvasAgg(figure)
    for number, (metric, intervals) in enumerate(series.items()):
        axes = figure.add_subplot(rows, columns, number + 1)
        for line in dict.fromkeys(lines):
            chosen = [i for i, name in enumerate(lines) if name == line
                      and intervals[i] is not None]
            ys = [intervals[i].mean for i in chosen]  # type: ignore[union-attr]
            errors = [0.0 if math.isnan(intervals[i].half_width)  # type: ignore[union-attr]
                      else intervals[i].half_width for i in chosen]  # type: ignore[union-attr]
            axes.errorbar([xs[i] for i in chosen], ys, yerr=errors, marker="o", capsize=3,
                          linestyle="-" if key else "none", label=line or None)
        if key is None:
            axes.set_xticks(xs)
            axes.set_xticklabels(settings, rotation=35, ha="right", fontsize=8)
        else:
            axes.set_xlabel(key)
            if all(x > 0 for x in xs) and max(xs) / min(xs) >= 8:
                axes.set_xscale("log", base=2)
            if any(lines):
                axes.legend(fontsize=7)
        axes.set_title(metric, fontsize=10)
        axes.grid(alpha=0.3)
    figure.suptitle(f"{title} (mean, 95% interval over seeds)", fontsize=10)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.3 / figure.get_figheight()))  # room for the title
    figure.savefig(path, dpi=110)
    return path
