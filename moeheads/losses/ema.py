"""A momentum (exponential moving average) copy of a network, as BYOL's target.

Grill et al. "Bootstrap Your Own Latent: A New Approach to Self-Supervised
Learning". NeurIPS 2020. The target weights follow ``xi <- tau * xi + (1 - tau) * theta``
after every optimiser step, with ``tau`` raised from ``tau_base`` to 1 by a cosine
schedule over training: ``tau = 1 - (1 - tau_base) * (cos(pi * k / K) + 1) / 2``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from moeheads.errors import ConfigError


def cosine_momentum(step: int, total_steps: int, base: float = 0.996, final: float = 1.0) -> float:
    """BYOL's momentum at ``step`` of ``total_steps``: ``base`` at step 0, ``final`` at the end.

    Example:
        >>> cosine_momentum(0, 100), cosine_momentum(100, 100)
        (0.996, 1.0)
    """
    if total_steps <= 0:
        raise ConfigError(f"total_steps must be > 0, got {total_steps}")
    progress = min(max(step / total_steps, 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2


class EMA(nn.Module):
    """A frozen copy of ``online`` whose weights track it by a moving average.

    The training engine calls :meth:`update` once after every optimiser step with
    the unwrapped online module (not a DDP wrapper). Buffers (BatchNorm running
    statistics) are not averaged: the target keeps its own, updated by its forward
    passes, as in BYOL.

    Args:
        online: The network to track (copied at construction).
        base_momentum: tau_base (0.996 in BYOL).
        final_momentum: tau at the end of training (1.0).

    Example:
        >>> online = nn.Linear(4, 2)
        >>> target = EMA(online)
        >>> target.update(online, step=0, total_steps=100)
        0.996
        >>> target(torch.randn(3, 4)).requires_grad
        False
    """

    def __init__(
        self, online: nn.Module, base_momentum: float = 0.996, final_momentum: float = 1.0
    ) -> None:
        super().__init__()
        if not 0.0 <= base_momentum <= final_momentum <= 1.0:
            raise ConfigError(
                "momentum must satisfy 0 <= base_momentum <= final_momentum <= 1, "
                f"got {base_momentum} and {final_momentum}"
            )
        self.base_momentum = base_momentum
        self.final_momentum = final_momentum
        self.momentum = base_momentum
        self.target = copy.deepcopy(online).requires_grad_(False)

    @torch.no_grad()
    def update(self, online: nn.Module, step: int, total_steps: int) -> float:
        """Move the target towards ``online`` with the scheduled momentum; returns it."""
        tau = cosine_momentum(step, total_steps, self.base_momentum, self.final_momentum)
        target_params = list(self.target.parameters())
        online_params = [p.detach() for p in online.parameters()]
        if len(target_params) != len(online_params):
            raise ConfigError(
                f"EMA.update: the online module has {len(online_params)} parameters, "
                f"the target {len(target_params)}"
            )
        if target_params:
            torch._foreach_lerp_(target_params, online_params, 1.0 - tau)
        self.momentum = tau
        return tau

    def forward(self, *args: object, **kwargs: object) -> object:
        """The target network's output, computed without gradient."""
        with torch.no_grad():
            return self.target(*args, **kwargs)
