"""Expert specialisation: per-task expert usage, expert roles and a usage heatmap.

Usage is each task's mean normalised gate per expert (from
:func:`moeheads.heads.routing_stats.routing_stats`), so every task's row sums to 1.
Expert roles, from the usage matrix ``u[t, n]``:

- ``"dead"``: no task uses the expert (``u[t, n] < 1 / (10 N)`` for every task, the
  dead-expert threshold of ``routing_stats``);
- the task name ``t`` (task-specific): task ``t`` accounts for more than
  ``specific_share`` (2/3 by default) of the expert's total usage ``sum_t u[t, n]``;
  with two tasks this means ``t`` uses it more than twice as much as the other;
- ``"shared"``: otherwise.

STAR reports (ImageNet-100, 8 experts) one expert shared by both tasks, five
mostly used by the invariant task and two by the equivariant one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from moeheads.errors import ConfigError
from moeheads.eval.plots import save_figure
from moeheads.heads import RoutingStats, routing_stats


@dataclass
class ExpertUsage:
    """Per-task expert usage and the role of each expert.

    Attributes:
        tasks: Task names, the rows of ``usage``.
        usage: ``[T, N]`` mean normalised gate of each task per expert (rows sum to 1).
        roles: Per expert: ``"shared"``, ``"dead"`` or the name of the task it is specific to.
        stats: Entropy, dead experts and overlap from ``routing_stats``.
    """

    tasks: list[str]
    usage: Tensor
    roles: list[str]
    stats: RoutingStats

    def counts(self) -> dict[str, int]:
        """Number of experts per role (``{"shared": 1, "inv": 5, "eq": 2}``)."""
        return {role: self.roles.count(role) for role in dict.fromkeys(self.roles)}


def expert_roles(usage: Tensor, tasks: list[str], specific_share: float = 2 / 3) -> list[str]:
    """Role of each expert from the usage matrix ``[T, N]`` (see the module docstring)."""
    if not 0.5 <= specific_share < 1:
        raise ConfigError(f"specific_share must be in [0.5, 1), got {specific_share}")
    num_experts = usage.shape[1]
    total = usage.sum(dim=0)
    share = usage / total.clamp_min(1e-12)
    dead = (usage < 1.0 / (10 * num_experts)).all(dim=0)
    top_share, top_task = share.max(dim=0)
    return [
        "dead" if dead[n] else tasks[int(top_task[n])] if top_share[n] > specific_share
        else "shared"
        for n in range(num_experts)
    ]


def expert_usage(gates: Mapping[str, Tensor], *, specific_share: float = 2 / 3) -> ExpertUsage:
    """Usage matrix, roles and statistics from gates ``task -> [..., N]`` (held-out images).

    Example:
        >>> gates = {"inv": torch.tensor([[0.8, 0.1, 0.1]]), "eq": torch.tensor([[0.1, 0.8, 0.1]])}
        >>> expert_usage(gates).roles
        ['inv', 'eq', 'shared']
    """
    stats = routing_stats(dict(gates))
    tasks = list(stats.usage)
    usage = torch.stack([stats.usage[t] for t in tasks]).cpu()
    return ExpertUsage(tasks, usage, expert_roles(usage, tasks, specific_share), stats)


def plot_expert_usage(
    usage: ExpertUsage, path: str | Path, *, title: str = "Expert usage"
) -> Path:
    """Save a heatmap of usage per task (rows) and expert (columns, labelled by role) as PNG."""
    tasks, num_experts = usage.tasks, usage.usage.shape[1]
    figure = Figure(figsize=(max(4.0, 0.55 * num_experts + 2), 0.7 * len(tasks) + 1.6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(usage.usage.numpy(), cmap="viridis", aspect="auto", vmin=0)
    low, high = image.get_clim()
    for t in range(len(tasks)):
        for n in range(num_experts):
            value = float(usage.usage[t, n])
            bright = (value - low) > 0.6 * (high - low)  # viridis turns yellow: dark text
            axes.text(n, t, f"{value:.2f}", ha="center", va="center", fontsize=7,
                      color="black" if bright else "white")
    axes.set_yticks(range(len(tasks)), tasks)
    axes.set_xticks(range(num_experts), [f"{n}\n{r}" for n, r in enumerate(usage.roles)],
                    fontsize=7)
    axes.set_xlabel("expert (role)")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="mean gate")
    return save_figure(figure, path)
