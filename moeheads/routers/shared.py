"""STAR-SS routing: task-specific experts plus shared experts with fixed unit weights."""

from __future__ import annotations

from collections.abc import Sequence

from moeheads.errors import ConfigError
from moeheads.routers.base import ROUTERS
from moeheads.routers.hard import HardRouter


@ROUTERS.register("shared")
class SharedRouter(HardRouter):
    """STAR-SS: task-specific plus shared experts with fixed unit weights (z^t = E^t + E^sh).

    The STAR-SS variant of STAR with three experts ``E^inv, E^eq, E^sh``. By
    default task i owns expert i and every expert from index T on is shared, so
    ``num_experts=3`` with tasks ``["inv", "eq"]`` gives ``inv -> {0, 2}`` and
    ``eq -> {1, 2}``. Gates are fixed 0/1 masks (no parameters).

    Args:
        in_features: Feature dimension d.
        num_experts: Number of experts N (at least T + 1).
        tasks: Task names.
        specific: Task name -> its own experts. Defaults to task i -> [i].
        shared: Experts used by every task. Defaults to all experts not in ``specific``.
    """

    def __init__(
        self,
        in_features: int,
        num_experts: int,
        tasks: Sequence[str],
        specific: dict[str, list[int]] | None = None,
        shared: list[int] | None = None,
    ) -> None:
        tasks = list(tasks)
        if specific is None:
            if num_experts < len(tasks) + 1:
                raise ConfigError(
                    f"shared routing needs one expert per task plus at least one shared expert: "
                    f"{len(tasks)} tasks need num_experts >= {len(tasks) + 1}, got {num_experts}"
                )
            specific = {task: [i] for i, task in enumerate(tasks)}
        owned = {e for experts in specific.values() for e in experts}
        if shared is None:
            shared = [e for e in range(num_experts) if e not in owned]
        if not shared:
            raise ConfigError("shared routing needs at least one shared expert")
        overlap = sorted(owned & set(shared))
        if overlap:
            raise ConfigError(f"experts {overlap} are both task-specific and shared")
        assignment = {t: list(specific.get(t, [])) + list(shared) for t in tasks}
        for task in specific:
            if task not in tasks:
                raise ConfigError(f"specific names unknown task {task!r}; tasks are {tasks}")
        super().__init__(in_features, num_experts, tasks, assignment=assignment)
        self.specific = {t: list(specific.get(t, [])) for t in tasks}
        self.shared = list(shared)
