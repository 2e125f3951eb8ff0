"""What the heads return: per-task embeddings, gates and auxiliary losses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from moeheads.errors import ConfigError


@dataclass
class HeadOutput:
    """What :class:`MoEHeads` returns.

    Attributes:
        embeddings: Task name -> embedding ``[..., out]`` (the input's leading dimensions).
        gates: Task name -> float32 gates ``[..., N]``.
        aux_losses: Weighted router auxiliary losses by name (empty for most routers).
    """

    embeddings: dict[str, Tensor]
    gates: dict[str, Tensor]
    aux_losses: dict[str, Tensor] = field(default_factory=dict)

    def aux_loss(self) -> Tensor | float:
        """Sum of the auxiliary losses (0.0 when there are none)."""
        return sum(self.aux_losses.values(), 0.0)


def stack_gates(gates: dict[str, Tensor]) -> Tensor:
    """Gates of every task as one ``[T, rows, N]`` float32 tensor."""
    return torch.stack([g.reshape(-1, g.shape[-1]).float() for g in gates.values()])


def stack_head_outputs(outputs: Sequence[HeadOutput]) -> HeadOutput:
    """Head outputs of several groups (e.g. one call per view) as one, stacked on dim 0.

    Embeddings and gates become ``[G, ...]``; each auxiliary loss is the mean over groups.
    """
    if not outputs:
        raise ConfigError("stack_head_outputs needs at least one output")
    tasks = outputs[0].embeddings.keys()
    aux_names = outputs[0].aux_losses.keys()
    return HeadOutput(
        embeddings={t: torch.stack([o.embeddings[t] for o in outputs]) for t in tasks},
        gates={t: torch.stack([o.gates[t] for o in outputs]) for t in tasks},
        aux_losses={
            name: torch.stack([o.aux_losses[name] for o in outputs]).mean() for name in aux_names
        },
    )
