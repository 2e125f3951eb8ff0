"""What the layouts and copies read of an expert bank: its stacked parameters."""

from __future__ import annotations

from typing import Protocol

from torch import nn


class StackedExperts(Protocol):
    """N experts' layers as stacked tensors (what :class:`~moeheads.heads.bank.ExpertBank` holds).

    ``weights[l]`` is ``[n, in_l, out_l]``; ``biases`` holds every layer's ``[n, out_l]``
    without BatchNorm, else the last layer's only; ``norms[l]`` is one
    ``BatchNorm1d(n * out_l)`` per hidden layer.
    """

    num_experts: int
    weights: nn.ParameterList
    biases: nn.ParameterList
    norms: nn.ModuleList
    batch_norm: bool
    activation: nn.Module
    activation_name: str

    @property
    def num_layers(self) -> int:
        """Linear layers per expert."""
        ...
