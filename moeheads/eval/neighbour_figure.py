"""The per-expert retrieval figure: a few query views and each expert's nearest neighbours,
experts grouped by their routing role (the paper's retrieval figure)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from moeheads.eval.plots import save_figure


def role_order(roles: Sequence[str], tasks: Sequence[str]) -> list[int]:
    """Experts sorted by role: each task's own experts (in task order), shared, then dead."""
    rank = {role: i for i, role in enumerate([*tasks, "shared", "dead"])}
    return sorted(range(len(roles)), key=lambda n: (rank.get(roles[n], len(rank)), n))


def neighbour_grid(images: dict[int, Tensor], neighbours: Tensor, order: Sequence[int],
                   queries: Sequence[int], shown: int, pad: int = 2) -> Tensor:
    """``[H, W, 3]`` grid: a row per expert of ``order``; per query, the query then its
    ``shown`` nearest neighbours (images ``[3, h, w]`` in [0, 1], white padding)."""
    h, w = next(iter(images.values())).shape[-2:]
    cols = len(queries) * (shown + 1)
    grid = torch.ones(3, len(order) * (h + pad) + pad, cols * (w + pad) + pad * len(queries))
    for r, expert in enumerate(order):
        for q, query in enumerate(queries):
            row = [query, *neighbours[expert, query, :shown].tolist()]
            for c, index in enumerate(row):
                x = pad + (q * (shown + 1) + c) * (w + pad) + q * pad
                y = pad + r * (h + pad)
                grid[:, y:y + h, x:x + w] = images[index]
    return grid.permute(1, 2, 0)


def plot_expert_neighbours(images: dict[int, Tensor], neighbours: Tensor, roles: Sequence[str],
                           tasks: Sequence[str], queries: Sequence[int], path: str | Path, *,
                           shown: int = 5, title: str = "Nearest neighbours per expert") -> Path:
    """Save the figure as PNG: rows are experts labelled ``expert (role)``."""
    order = role_order(roles, tasks)
    grid = neighbour_grid(images, neighbours, order, queries, shown)
    height = max(2.0, 0.45 * len(order) + 1.0)
    figure = Figure(figsize=(max(4.0, 0.45 * len(queries) * (shown + 1) + 1.5), height))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.imshow(grid.clamp(0, 1).numpy(), interpolation="nearest")
    h = next(iter(images.values())).shape[-2] + 2
    axes.set_yticks([2 + h * r + h / 2 for r in range(len(order))],
                    [f"{n} ({roles[n]})" for n in order], fontsize=7)
    axes.set_xticks([])
    axes.set_title(f"{title}: query, then its {shown} nearest", fontsize=9)
    return save_figure(figure, path)
