"""The router contract: features in, per-task gates over experts out.

A router maps features ``h`` of shape ``[B, d]`` to gates of shape
``[T, B, N]`` (T tasks, B rows, N experts) and a dictionary of auxiliary losses.
Gates are computed in float32, even under autocast, because a softmax over
experts in bfloat16 loses the small weights that tell experts apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.registry import Registry


@dataclass
class RouterOutput:
    """What a router returns.

    Attributes:
        gates: Float32 tensor ``[T, B, N]``: the weight of expert n for row b of task t.
        aux_losses: Already weighted auxiliary losses (load balancing, z-loss), by name.
            The heads pass them on; the training objective adds them to the total.
    """

    gates: Tensor
    aux_losses: dict[str, Tensor] = field(default_factory=dict)


class Router(nn.Module):
    """Base class of routing strategies.

    Subclasses implement :meth:`route`, which receives float32 features, and are
    registered with ``@ROUTERS.register("name")``. The heads build a router with
    ``in_features``, ``num_experts`` and ``tasks`` plus the router's own options.

    Args:
        in_features: Feature dimension d of the rows to route.
        num_experts: Number of experts N.
        tasks: Task names, in the order of the first gate dimension.
    """

    def __init__(self, in_features: int, num_experts: int, tasks: Sequence[str]) -> None:
        super().__init__()
        if num_experts < 1:
            raise ConfigError(f"num_experts must be >= 1, got {num_experts}")
        if not tasks:
            raise ConfigError("a router needs at least one task")
        if len(set(tasks)) != len(tasks):
            raise ConfigError(f"task names must be unique, got {list(tasks)}")
        self.in_features = in_features
        self.num_experts = num_experts
        self.tasks = tuple(tasks)

    @property
    def num_tasks(self) -> int:
        """Number of tasks T."""
        return len(self.tasks)

    def forward(self, h: Tensor) -> RouterOutput:
        """Route rows ``h`` of shape ``[B, d]``; gates are float32 ``[T, B, N]``."""
        if h.dim() != 2 or h.shape[-1] != self.in_features:
            raise ShapeError(
                f"{type(self).__name__} expects features [B, {self.in_features}], "
                f"got {list(h.shape)}"
            )
        with torch.autocast(device_type=h.device.type, enabled=False):
            out = self.route(h.float())
        return out

    def route(self, h: Tensor) -> RouterOutput:
        """Compute gates from float32 features ``[B, d]`` (implemented by subclasses)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_experts={self.num_experts}, tasks={self.tasks}"


ROUTERS: Registry[Router] = Registry("router")
"""Registry of routing strategies: ``ROUTERS.list()`` names them."""


def create_router(
    name: str, in_features: int, num_experts: int, tasks: Sequence[str], **options: object
) -> Router:
    """Build the registered router ``name``.

    Example:
        >>> router = create_router("star", in_features=512, num_experts=16, tasks=["inv", "eq"])
        >>> router(torch.randn(4, 512)).gates.shape
        torch.Size([2, 4, 16])
    """
    return ROUTERS.create(
        name, in_features=in_features, num_experts=num_experts, tasks=list(tasks), **options
    )
