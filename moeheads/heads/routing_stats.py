"""Routing statistics: how each task uses the experts.

Gates are first normalised per row to a distribution over experts (hard and
shared routers give 0/1 masks that sum to more than 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class RoutingStats:
    """Per-task expert usage.

    Attributes:
        usage: Task -> mean normalised gate per expert ``[N]`` (sums to 1).
        entropy: Task -> mean per-row gate entropy in nats (0 = one expert,
            ``log N`` = uniform).
        usage_entropy: Task -> entropy of the mean usage (how many experts the task
            uses overall).
        dead: Task -> experts whose mean gate is below ``1 / (10 N)``.
        overlap: ``"a|b"`` -> ``sum_n min(usage_a[n], usage_b[n])`` for each task pair:
            1 when two tasks use the experts identically, 0 when they share none.
    """

    usage: dict[str, Tensor]
    entropy: dict[str, float]
    usage_entropy: dict[str, float]
    dead: dict[str, list[int]]
    overlap: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        """Plain Python values, for JSON logging."""
        return {
            "usage": {t: u.tolist() for t, u in self.usage.items()},
            "entropy": self.entropy,
            "usage_entropy": self.usage_entropy,
            "dead": self.dead,
            "overlap": self.overlap,
        }


def _normalise(gates: Tensor) -> Tensor:
    rows = gates.reshape(-1, gates.shape[-1]).float()
    return rows / rows.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def _entropy(p: Tensor) -> Tensor:
    return -(p * p.clamp_min(1e-12).log()).sum(dim=-1)


@torch.no_grad()
def routing_stats(gates: dict[str, Tensor]) -> RoutingStats:
    """Statistics of gates ``task -> [..., N]`` (e.g. ``HeadOutput.gates``).

    Example:
        >>> import torch
        >>> s = routing_stats({"inv": torch.tensor([[1.0, 0.0]]), "eq": torch.tensor([[0.5, 0.5]])})
        >>> s.overlap["inv|eq"], s.dead["inv"]
        (0.5, [1])
    """
    probs = {task: _normalise(g) for task, g in gates.items()}
    usage = {task: p.mean(dim=0) for task, p in probs.items()}
    num_experts = next(iter(usage.values())).numel()
    threshold = 1.0 / (10 * num_experts)
    tasks = list(usage)
    overlap = {
        f"{a}|{b}": float(torch.minimum(usage[a], usage[b]).sum())
        for i, a in enumerate(tasks)
        for b in tasks[i + 1:]
    }
    return RoutingStats(
        usage=usage,
        entropy={task: float(_entropy(p).mean()) for task, p in probs.items()},
        usage_entropy={task: float(_entropy(u)) for task, u in usage.items()},
        dead={task: [int(i) for i in torch.nonzero(u < threshold).flatten()]
              for task, u in usage.items()},
        overlap=overlap,
    )


def max_entropy(num_experts: int) -> float:
    """Entropy of uniform gates over ``num_experts`` experts, ``log N``."""
    return math.log(num_experts)
