"""Per-task linear gating logits: one ``Linear(d, N)`` per task held as one tensor."""

from __future__ import annotations

import math

import torch
from einops import einsum
from torch import Tensor, nn


class TaskLinear(nn.Module):
    """T independent linear maps ``R^d -> R^N`` computed in one einsum.

    Shapes: ``h[b d]`` -> ``logits[t b n]`` with ``weight[t n d]`` and ``bias[t n]``.
    Initialised like ``nn.Linear`` (uniform in ``±1/sqrt(d)``) unless ``zero_init``.

    Args:
        in_features: Feature dimension d.
        num_experts: Number of outputs per task N.
        num_tasks: Number of tasks T.
        bias: Whether each task's map has a bias.
        zero_init: Start from all-zero weights (and bias), giving uniform gates.
    """

    def __init__(
        self, in_features: int, num_experts: int, num_tasks: int, bias: bool = True,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_tasks, num_experts, in_features))
        self.bias = nn.Parameter(torch.empty(num_tasks, num_experts)) if bias else None
        self.zero_init = zero_init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weights (``nn.Linear``'s scheme, or zeros)."""
        bound = 0.0 if self.zero_init else 1.0 / math.sqrt(self.weight.shape[-1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, h: Tensor) -> Tensor:
        """Logits ``[T, B, N]`` for features ``[B, d]``."""
        logits = einsum(h, self.weight.to(h.dtype), "b d, t n d -> t b n")
        if self.bias is not None:
            logits = logits + self.bias.to(h.dtype)[:, None, :]
        return logits
