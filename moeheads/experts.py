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
batch statistics from :func:`~moeheads.grouped_norm.grouped_batch_norm`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.grouped_norm import grouped_batch_norm

#: The experts' activations by name: the one list recipes and Python calls both use.
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}

#: An activation name, as a type that pydantic (and a recipe) validates.
Activation = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]


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
            out = self._forward_feature_major(h.reshape(groups, rows, -1))
        else:
            out = self._forward_row_major(h.reshape(groups, rows, -1))
        return out.view(self.num_experts, *h.shape[:2], -1)

    def _forward_row_major(self, h: Tensor) -> Tensor:
        """Activations ``x[n, (b g), h]``; BatchNorm on the ``[b, (g n h)]`` layout."""
        n, (groups, rows) = self.num_experts, h.shape[:2]
        last = self.num_layers - 1
        # rows interleaved by group, so that [b, (g n h)] is read back as a view below
        x = rearrange(h, "g b d -> (b g) d").expand(n, -1, -1)  # stride 0 over n
        for layer, weight in enumerate(self.weights):
            x = torch.bmm(x, weight)  # [n, (b g), out_l]
            if layer == last:
                x = x + self.biases[-1][:, None, :].to(x.dtype)
                return rearrange(x, "n (b g) o -> n g b o", g=groups).contiguous()
            x = rearrange(x, "n (b g) h -> b (g n h)", g=groups)
            if self.batch_norm:
                x = grouped_batch_norm(self.norms[layer], x, groups, group_major=True)
            else:
                x = x + rearrange(self.biases[layer], "n h -> (n h)").to(x.dtype)
            # a strided view, not a copy: the next bmm reads [n, (b g), h] from [b, (g n h)]
            x = self.activation(x).view(rows, groups, n, -1).permute(2, 0, 1, 3)
            x = x.reshape(n, rows * groups, -1)
        raise AssertionError("unreachable")

    def _forward_feature_major(self, h: Tensor) -> Tensor:
        """Activations ``x[n, h, (g b)]``; BatchNorm on the contiguous ``[1, (n h g), b]`` view.

        Weights are read transposed (a view) and no activation is copied to change its
        layout; per-channel statistics over b are exactly each expert's in each group.
        """
        n, (groups, rows) = self.num_experts, h.shape[:2]
        last = self.num_layers - 1
        x = h.reshape(groups * rows, -1).t().expand(n, -1, -1)  # [n, d, (g b)], stride 0 over n
        for layer, weight in enumerate(self.weights):
            x = torch.bmm(weight.transpose(1, 2), x)  # [n, out_l, (g b)]
            if layer == last:
                # contiguous [n, g, b, o]: a strided result sends the mixing einsum to a slow path
                out = x + self.biases[-1][:, :, None].to(x.dtype)
                return out.transpose(1, 2).contiguous().view(n, groups, rows, -1)
            if self.batch_norm:
                x = grouped_batch_norm(
                    self.norms[layer], x.reshape(1, -1, rows), groups, group_major=False
                ).view(n, -1, groups * rows)
            else:
                x = x + self.biases[layer][:, :, None].to(x.dtype)
            x = self.activation(x)
        raise AssertionError("unreachable")

    def expert(self, k: int) -> nn.Sequential:
        """Expert ``k`` as a standalone ``nn.Sequential`` with copied weights and statistics."""
        if not 0 <= k < self.num_experts:
            raise ConfigError(f"expert index must be in 0..{self.num_experts - 1}, got {k}")
        layers: list[nn.Module] = []
        last = self.num_layers - 1
        for layer, weight in enumerate(self.weights):
            w_in, w_out = weight.shape[1:]
            has_bias = layer == last or not self.batch_norm
            linear = nn.Linear(w_in, w_out, bias=has_bias)
            with torch.no_grad():
                linear.weight.copy_(weight[k].T)
                if has_bias:
                    bias = self.biases[-1] if layer == last else self.biases[layer]
                    linear.bias.copy_(bias[k])
            layers.append(linear)
            if layer < last:
                if self.batch_norm:
                    layers.append(_slice_norm(self.norms[layer], k, w_out))
                layers.append(ACTIVATIONS[self.activation_name]())
        return nn.Sequential(*layers).to(self.weights[0].device)

    def experts(self) -> list[nn.Sequential]:
        """Every expert as a standalone ``nn.Sequential``."""
        return [self.expert(k) for k in range(self.num_experts)]

    def load_experts(self, experts: Sequence[nn.Sequential]) -> None:
        """Copy weights and BatchNorm statistics from N ``nn.Sequential`` experts.

        Each expert must have this bank's structure, as produced by :meth:`expert`.

        Raises:
            ConfigError: If the count of experts or layers differs.
            ShapeError: If a layer's weight has another shape.
        """
        if len(experts) != self.num_experts:
            raise ConfigError(f"expected {self.num_experts} experts, got {len(experts)}")
        for k, expert in enumerate(experts):
            linears = [m for m in expert if isinstance(m, nn.Linear)]
            norms = [m for m in expert if isinstance(m, nn.BatchNorm1d)]
            if len(linears) != self.num_layers or len(norms) != len(self.norms):
                raise ConfigError(
                    f"expert {k} has {len(linears)} Linear and {len(norms)} BatchNorm1d layers; "
                    f"the bank needs {self.num_layers} and {len(self.norms)}"
                )
            with torch.no_grad():
                for layer, linear in enumerate(linears):
                    if tuple(linear.weight.T.shape) != tuple(self.weights[layer].shape[1:]):
                        raise ShapeError(
                            f"expert {k} layer {layer}: weight {tuple(linear.weight.shape)} does "
                            f"not fit {tuple(self.weights[layer].shape[1:][::-1])}"
                        )
                    self.weights[layer][k].copy_(linear.weight.T)
                    if linear.bias is not None:
                        last = layer == self.num_layers - 1
                        (self.biases[-1] if last else self.biases[layer])[k].copy_(linear.bias)
                for layer, norm in enumerate(norms):
                    _load_norm_slice(self.norms[layer], norm, k)

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


def _slice_norm(norm: nn.BatchNorm1d, k: int, width: int) -> nn.BatchNorm1d:
    part = slice(k * width, (k + 1) * width)
    out = nn.BatchNorm1d(width, eps=norm.eps, momentum=norm.momentum)
    with torch.no_grad():
        out.weight.copy_(norm.weight[part])
        out.bias.copy_(norm.bias[part])
        out.running_mean.copy_(norm.running_mean[part])
        out.running_var.copy_(norm.running_var[part])
        out.num_batches_tracked.copy_(norm.num_batches_tracked)
    return out


def _load_norm_slice(target: nn.BatchNorm1d, source: nn.BatchNorm1d, k: int) -> None:
    width = source.num_features
    if target.num_features % width:
        raise ConfigError(f"BatchNorm width {width} does not divide {target.num_features}")
    part = slice(k * width, (k + 1) * width)
    target.weight[part].copy_(source.weight)
    target.bias[part].copy_(source.bias)
    target.running_mean[part].copy_(source.running_mean)
    target.running_var[part].copy_(source.running_var)
    target.num_batches_tracked.copy_(source.num_batches_tracked)
