"""A bank of N expert MLPs computed in one batched operation.

Shapes use einsum letters: ``b`` rows, ``d`` input features, ``n`` experts,
``h``/``o`` layer widths. Layer l of every expert is one stacked weight
``[n, in_l, out_l]`` and every layer is one batched matmul over the experts (the
first reads the rows through a broadcast view, so neither rows nor weights are
copied). BatchNorm on a hidden layer is a single ``BatchNorm1d(n*h)``: its channels
are independent, so each expert keeps its own statistics exactly as N separate
``BatchNorm1d(h)`` would. Activations are row-major ``[n, b, h]`` for small batches
and feature-major ``[n, h, b]`` for large ones (see ``feature_major_min_rows``).
Groups of rows (``g``: the views of STAR) run in the same matmuls and get their own
batch statistics from :func:`~moeheads.numerics.grouped_norm.grouped_batch_norm`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.heads.activations import ACTIVATIONS, Activation
from moeheads.heads.bank_layouts import forward_feature_major, forward_row_major
from moeheads.heads.expert_copies import expert_module, load_experts


class ExpertBank(nn.Module):
    """N experts ``Linear -> [BN -> act] x L -> Linear(bias)`` with stacked weights.

    The STAR default for d-dimensional features is two hidden layers of width d and
    a 128-dimensional output: ``Linear(d,d,no bias)-BN-ReLU-Linear(d,d,no bias)-BN-ReLU-
    Linear(d,128)``. Hidden layers have a bias only when ``batch_norm`` is off.

    Args:
        num_experts: Number of experts N.
        in_features: Input feature dimension d.
        out_features: Output (embedding) dimension.
        hidden_features: Widths of the hidden layers; ``None`` means ``[d, d]`` and
            ``[]`` makes each expert a single ``Linear(d, out)``.
        batch_norm: BatchNorm after each hidden layer.
        activation: ``"relu"``, ``"gelu"`` or ``"silu"``.

    Example:
        >>> bank = ExpertBank(num_experts=4, in_features=32, out_features=8)
        >>> bank(torch.randn(10, 32)).shape
        torch.Size([4, 10, 8])
    """

    feature_major_min_rows: int = 640
    """Batches of at least this many rows use the feature-major layout, smaller ones the
    row-major layout: the faster choice on either side of this size, measured with
    ``benchmarks/heads.py`` and the bank alone on a 2-core x86 CPU (both layouts compute
    the same values; set it on an instance to force one)."""

    def __init__(
        self,
        num_experts: int,
        in_features: int,
        out_features: int = 128,
        hidden_features: Sequence[int] | None = None,
        batch_norm: bool = True,
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        if num_experts < 1:
            raise ConfigError(f"num_experts must be >= 1, got {num_experts}")
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        hidden = [in_features, in_features] if hidden_features is None else list(hidden_features)
        self.num_experts = num_experts
        self.in_features = in_features
        self.out_features = out_features
        self.hidden_features = hidden
        self.batch_norm = batch_norm
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]()
        widths = [in_features, *hidden, out_features]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(num_experts, w_in, w_out))
            for w_in, w_out in itertools.pairwise(widths)
        )
        hidden_bias = not batch_norm
        self.biases = nn.ParameterList(
            nn.Parameter(torch.empty(num_experts, w))
            for w in ([*hidden, out_features] if hidden_bias else [out_features])
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(num_experts * w) for w in (hidden if batch_norm else [])
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise every expert as ``nn.Linear`` does (uniform in ``±1/sqrt(fan_in)``)."""
        fan_ins = [w.shape[1] for w in self.weights]
        for weight, fan_in in zip(self.weights, fan_ins, strict=True):
            nn.init.uniform_(weight, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        for bias, fan_in in zip(self.biases, fan_ins[-len(self.biases):], strict=True):
            nn.init.uniform_(bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        for norm in self.norms:
            norm.reset_parameters()

    @property
    def num_layers(self) -> int:
        """Number of linear layers per expert."""
        return len(self.weights)

    def forward(self, h: Tensor) -> Tensor:
        """All experts on all rows: ``h[b, d] -> out[n, b, o]``.

        Groups ``h[G, b, d] -> out[n, G, b, o]`` are computed together but each is
        normalised with its own BatchNorm statistics in training, exactly as G calls
        in turn would (outputs, gradients and running statistics).
        """
        if h.dim() not in (2, 3) or h.shape[-1] != self.in_features:
            raise ShapeError(
                f"ExpertBank expects features [B, {self.in_features}] or groups "
                f"[G, B, {self.in_features}], got {list(h.shape)}"
            )
        if h.dim() == 2:
            return self(h[None])[:, 0]
        groups, rows = h.shape[:2]
        if not (self.training and self.batch_norm):
            # the same function on every row: groups need nothing of their own
            groups, rows = 1, groups * rows
        if groups * rows >= self.feature_major_min_rows:
            out = forward_feature_major(self, h.reshape(groups, rows, -1))
        else:
            out = forward_row_major(self, h.reshape(groups, rows, -1))
        return out.view(self.num_experts, *h.shape[:2], -1)

    def expert(self, k: int) -> nn.Sequential:
        """Expert ``k`` as a standalone ``nn.Sequential`` with copied weights and statistics."""
        return expert_module(self, k)

    def experts(self) -> list[nn.Sequential]:
        """Every expert as a standalone ``nn.Sequential``."""
        return [self.expert(k) for k in range(self.num_experts)]

    def load_experts(self, experts: Sequence[nn.Sequential]) -> None:
        """Copy weights and BatchNorm statistics from N ``nn.Sequential`` experts
        (see :func:`~moeheads.heads.expert_copies.load_experts`)."""
        load_experts(self, experts)

    @classmethod
    def from_experts(cls, experts: Sequence[nn.Sequential], **options: object) -> ExpertBank:
        """A bank holding copies of ``experts`` (shapes read from the first one)."""
        linears = [m for m in experts[0] if isinstance(m, nn.Linear)]
        has_norm = any(isinstance(m, nn.BatchNorm1d) for m in experts[0])
        bank = cls(
            num_experts=len(experts),
            in_features=linears[0].in_features,
            out_features=linears[-1].out_features,
            hidden_features=[lin.out_features for lin in linears[:-1]],
            batch_norm=has_norm,
            **options,  # type: ignore[arg-type]
        )
        bank.load_experts(experts)
        return bank

    def extra_repr(self) -> str:
        widths = [self.in_features, *self.hidden_features, self.out_features]
        return (
            f"num_experts={self.num_experts}, widths={widths}, batch_norm={self.batch_norm}, "
            f"activation={self.activation_name!r}"
        )
