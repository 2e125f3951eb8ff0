"""PNG line plots for run reports (matplotlib's Agg canvas; no global pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from moeheads.errors import writing

#: One curve: x values and y values (``None`` where a value is missing).
Series = tuple[Sequence[float], Sequence[float | None]]


def line_plot(
    path: str | Path,
    series: Mapping[str, Series],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Path:
    """Save one line per series (with markers when a series has few points) as a PNG."""
    figure = Figure(figsize=(6.4, 3.6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, (xs, ys) in series.items():
        points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
        if not points:
            continue
        px, py = zip(*points, strict=True)
        axes.plot(px, py, label=label, marker="o" if len(points) <= 30 else None, markersize=3,
                  linewidth=1.4)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend(fontsize=8, frameon=False)
    return save_figure(figure, path, dpi=110)


def save_figure(figure: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Lay out ``figure`` and write it as PNG to ``path`` (its folder made), naming the file
    on a write failure."""
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with writing(path, "report figure"):
        figure.savefig(path, dpi=dpi)
    return path
