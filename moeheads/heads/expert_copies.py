"""Copies between an :class:`~moeheads.heads.bank.ExpertBank` and N plain experts.

One expert of the bank as a standalone ``nn.Sequential`` (weights and BatchNorm
statistics copied), and the reverse: a bank loaded from N such experts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.heads.activations import ACTIVATIONS
from moeheads.heads.stacked import StackedExperts


def expert_module(bank: StackedExperts, k: int) -> nn.Sequential:
    """Expert ``k`` as a standalone ``nn.Sequential`` with copied weights and statistics."""
    if not 0 <= k < bank.num_experts:
        raise ConfigError(f"expert index must be in 0..{bank.num_experts - 1}, got {k}")
    layers: list[nn.Module] = []
    last = bank.num_layers - 1
    for layer, weight in enumerate(bank.weights):
        w_in, w_out = weight.shape[1:]
        has_bias = layer == last or not bank.batch_norm
        linear = nn.Linear(w_in, w_out, bias=has_bias)
        with torch.no_grad():
            linear.weight.copy_(weight[k].T)
            if has_bias:
                bias = bank.biases[-1] if layer == last else bank.biases[layer]
                linear.bias.copy_(bias[k])
        layers.append(linear)
        if layer < last:
            if bank.batch_norm:
                layers.append(_slice_norm(bank.norms[layer], k, w_out))
            layers.append(ACTIVATIONS[bank.activation_name]())
    return nn.Sequential(*layers).to(bank.weights[0].device)

def load_experts(bank: StackedExperts, experts: Sequence[nn.Sequential]) -> None:
    """Copy weights and BatchNorm statistics from N ``nn.Sequential`` experts.

    Each expert must have the bank's structure, as produced by :func:`expert_module`.

    Raises:
        ConfigError: If the count of experts or layers differs.
        ShapeError: If a layer's weight has another shape.
    """
    if len(experts) != bank.num_experts:
        raise ConfigError(f"expected {bank.num_experts} experts, got {len(experts)}")
    for k, expert in enumerate(experts):
        linears = [m for m in expert if isinstance(m, nn.Linear)]
        norms = [m for m in expert if isinstance(m, nn.BatchNorm1d)]
        if len(linears) != bank.num_layers or len(norms) != len(bank.norms):
            raise ConfigError(
                f"expert {k} has {len(linears)} Linear and {len(norms)} BatchNorm1d layers; "
                f"the bank needs {bank.num_layers} and {len(bank.norms)}"
            )
        with torch.no_grad():
            for layer, linear in enumerate(linears):
                if tuple(linear.weight.T.shape) != tuple(bank.weights[layer].shape[1:]):
                    raise ShapeError(
                        f"expert {k} layer {layer}: weight {tuple(linear.weight.shape)} does "
                        f"not fit {tuple(bank.weights[layer].shape[1:][::-1])}"
                    )
                bank.weights[layer][k].copy_(linear.weight.T)
                if linear.bias is not None:
                    last = layer == bank.num_layers - 1
                    (bank.biases[-1] if last else bank.biases[layer])[k].copy_(linear.bias)
            for layer, norm in enumerate(norms):
                _load_norm_slice(bank.norms[layer], norm, k)


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
