"""Mixture-of-experts projection heads: an expert bank mixed by a router per task.

Shapes: features ``h[..., d]`` (any leading dimensions, e.g. views) are flattened
to ``h[b, d]``; the bank gives ``e[n, b, o]``; the router gives ``g[t, b, n]``;
task t's embedding is ``z[t, b, o] = sum_n g[t, b, n] * e[n, b, o]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import torch
from einops import einsum
from pydantic import Field
from torch import Tensor, nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.heads.activations import Activation
from moeheads.heads.bank import ExpertBank
from moeheads.heads.output import HeadOutput
from moeheads.routers import Router, create_router


class MoEHeads(nn.Module):
    """Per-task projection heads as a router-weighted mixture of shared experts.

    Build it from parts (``MoEHeads(bank, router)``) or with :meth:`build`.

    Args:
        experts: The expert bank.
        router: The routing strategy; its ``num_experts`` must match the bank.

    Example:
        >>> heads = MoEHeads.build(in_features=512, tasks=["inv", "eq"], num_experts=16,
        ...                        router="star")
        >>> out = heads(torch.randn(3, 8, 512))  # 3 views of 8 images
        >>> out.embeddings["inv"].shape, out.gates["eq"].shape
        (torch.Size([3, 8, 128]), torch.Size([3, 8, 16]))
    """

    def __init__(self, experts: ExpertBank, router: Router) -> None:
        super().__init__()
        if router.num_experts != experts.num_experts:
            raise ConfigError(
                f"router has {router.num_experts} experts but the bank has {experts.num_experts}"
            )
        if router.in_features != experts.in_features:
            raise ConfigError(
                f"router expects {router.in_features} features but the bank "
                f"{experts.in_features}"
            )
        self.experts = experts
        self.router = router

    @classmethod
    def build(
        cls,
        in_features: int,
        tasks: Sequence[str],
        num_experts: Annotated[int, Field(ge=1)] = 16,
        router: str = "star",
        router_options: dict[str, Any] | None = None,
        out_features: Annotated[int, Field(ge=1)] = 128,
        hidden_features: list[int] | None = None,
        batch_norm: bool = True,
        activation: Activation = "relu",
    ) -> MoEHeads:
        """Heads from names and sizes: a registered router plus an :class:`ExpertBank`.

        A recipe's ``heads`` section (:class:`~moeheads.recipe.schema.HeadsConfig`) is derived
        from this signature: the same options, defaults and constraints.

        Args:
            in_features: Feature dimension d of the backbone.
            tasks: Task names, one gate per task.
            num_experts: Number of experts N.
            router: A registered router (``moeheads list routers``).
            router_options: The router's options.
            out_features: Embedding dimension of every task.
            hidden_features: Hidden widths of each expert (``None``: two of width d).
            batch_norm: BatchNorm after each hidden layer.
            activation: ``relu``, ``gelu`` or ``silu``.
        """
        bank = ExpertBank(
            num_experts, in_features, out_features, hidden_features, batch_norm, activation
        )
        gate = create_router(router, in_features, num_experts, tasks, **(router_options or {}))
        return cls(bank, gate)

    @property
    def tasks(self) -> tuple[str, ...]:
        """Task names, in the router's order."""
        return self.router.tasks

    @property
    def in_features(self) -> int:
        """Feature dimension d the heads expect."""
        return self.experts.in_features

    def task_head(self, task: str) -> TaskHead:
        """One task's head as a module returning a tensor (shares these heads' weights).

        Example:
            >>> heads = MoEHeads.build(in_features=512, tasks=["inv", "eq"], num_experts=4)
            >>> heads.task_head("inv")(torch.randn(8, 512)).shape
            torch.Size([8, 128])
        """
        return TaskHead(self, task)

    @property
    def out_features(self) -> int:
        """Embedding dimension of every task."""
        return self.experts.out_features

    def forward(self, h: Tensor) -> HeadOutput:
        """Embeddings and gates per task for features ``h[..., d]``."""
        if h.dim() < 2:
            raise ShapeError(f"MoEHeads expects features [..., d], got {list(h.shape)}")
        return self.forward_groups(h[None])[0]

    def forward_groups(self, h: Tensor) -> list[HeadOutput]:
        """What G separate calls on groups ``h[G, ..., d]`` give, from one expert pass.

        Each group gets its own BatchNorm statistics in the experts (STAR's view
        groups), its own routing call (auxiliary losses and routing noise included)
        and its own :class:`~moeheads.heads.output.HeadOutput`; the experts run once over all rows.
        """
        if h.shape[-1] != self.in_features or h.dim() < 3:
            raise ShapeError(
                f"MoEHeads expects features [..., {self.in_features}] (groups "
                f"[G, ..., {self.in_features}]), got {list(h.shape)}"
            )
        groups, lead = h.shape[0], h.shape[1:-1]
        rows = h.reshape(groups, -1, h.shape[-1])
        expert_out = self.experts(rows)  # [n, g, b, o]
        routed = [self.router(group) for group in rows]  # gates [t, b, n], float32
        gates = torch.stack([r.gates for r in routed], 1)  # [t, g, b, n]
        mixed = einsum(gates.to(expert_out.dtype), expert_out, "t g b n, n g b o -> g t b o")
        return [
            HeadOutput(
                embeddings={task: z[t].reshape(*lead, -1) for t, task in enumerate(self.tasks)},
                gates={task: r.gates[t].reshape(*lead, -1) for t, task in enumerate(self.tasks)},
                aux_losses=dict(r.aux_losses),
            )
            for z, r in zip(mixed, routed, strict=True)
        ]


class TaskHead(nn.Module):
    """One task of [`MoEHeads`][moeheads.heads.mixture.MoEHeads] as a plain projection head.

    ``head(h)`` returns that task's embedding ``[..., out]`` as a tensor, so the head
    fits wherever a projection head module goes (for example in place of lightly's
    ``SimCLRProjectionHead``, before any tensor-returning loss). The weights are the
    shared heads' own: training one task's head trains the shared experts and router.
    The router's auxiliary losses are not returned; call the shared heads when the
    objective needs them.

    Args:
        heads: The shared heads.
        task: One of ``heads.tasks``.

    Example:
        >>> heads = MoEHeads.build(in_features=64, tasks=["inv", "eq"], num_experts=4,
        ...                        out_features=16)
        >>> head = TaskHead(heads, "inv")
        >>> head(torch.randn(8, 64)).shape
        torch.Size([8, 16])
    """

    def __init__(self, heads: MoEHeads, task: str) -> None:
        super().__init__()
        if task not in heads.tasks:
            raise ConfigError(f"unknown task {task!r}; the heads have {', '.join(heads.tasks)}")
        self.heads = heads
        self.task = task

    def forward(self, h: Tensor) -> Tensor:
        """The task's embedding of features ``h[..., d]``."""
        return self.heads(h).embeddings[self.task]
