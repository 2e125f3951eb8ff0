"""Hard routing: a fixed task -> experts assignment (separate heads, EquiMod baseline)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from moeheads.errors import ConfigError
from moeheads.routers.base import ROUTERS, Router, RouterOutput


@ROUTERS.register("hard")
class HardRouter(Router):
    """Fixed one-hot or multi-hot routing: each task sums its assigned experts.

    With one expert per task (the default assignment, task i -> expert i) this is
    exactly separate projection heads, the EquiMod baseline. Gates are 0/1 masks
    that do not depend on the input, so the router has no parameters.

    Args:
        in_features: Feature dimension d.
        num_experts: Number of experts N.
        tasks: Task names.
        assignment: Task name -> list of expert indices. Defaults to task i -> [i].

    Example:
        >>> router = HardRouter(8, num_experts=2, tasks=["inv", "eq"])
        >>> router(torch.randn(3, 8)).gates[:, 0]
        tensor([[1., 0.],
                [0., 1.]])
    """

    def __init__(
        self,
        in_features: int,
        num_experts: int,
        tasks: Sequence[str],
        assignment: dict[str, list[int]] | None = None,
    ) -> None:
        super().__init__(in_features, num_experts, tasks)
        if assignment is None:
            if num_experts < len(self.tasks):
                raise ConfigError(
                    f"hard routing needs at least one expert per task: {len(self.tasks)} tasks "
                    f"but num_experts={num_experts}"
                )
            assignment = {task: [i] for i, task in enumerate(self.tasks)}
        self.assignment = _check_assignment(assignment, self.tasks, num_experts)
        mask = torch.zeros(self.num_tasks, num_experts)
        for t, task in enumerate(self.tasks):
            mask[t, self.assignment[task]] = 1.0
        self.register_buffer("mask", mask, persistent=False)

    def route(self, h: Tensor) -> RouterOutput:
        gates = self.mask.to(h.device)[:, None, :].expand(-1, h.shape[0], -1)
        return RouterOutput(gates=gates)


def _check_assignment(
    assignment: dict[str, list[int]], tasks: tuple[str, ...], num_experts: int
) -> dict[str, list[int]]:
    missing = [t for t in tasks if t not in assignment]
    extra = [t for t in assignment if t not in tasks]
    if missing or extra:
        raise ConfigError(
            f"assignment must name exactly the tasks {list(tasks)}; "
            f"missing {missing}, unknown {extra}"
        )
    for task, experts in assignment.items():
        if not experts:
            raise ConfigError(f"assignment: task {task!r} has no expert")
        bad = [e for e in experts if not 0 <= e < num_experts]
        if bad:
            raise ConfigError(
                f"assignment: task {task!r} names experts {bad} outside 0..{num_experts - 1}"
            )
        if len(set(experts)) != len(experts):
            raise ConfigError(f"assignment: task {task!r} repeats an expert: {experts}")
    return {task: list(assignment[task]) for task in tasks}
