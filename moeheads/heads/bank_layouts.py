"""The two memory layouts in which :class:`~moeheads.heads.bank.ExpertBank` runs its experts.

Both compute the same values; the bank picks one by batch size
(:attr:`~moeheads.heads.bank.ExpertBank.feature_major_min_rows`). Shape letters as in
:mod:`moeheads.heads.bank`.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from moeheads.heads.stacked import StackedExperts
from moeheads.numerics.grouped_norm import grouped_batch_norm


def forward_row_major(bank: StackedExperts, h: Tensor) -> Tensor:
    """Activations ``x[n, (b g), h]``; BatchNorm on the ``[b, (g n h)]`` layout."""
    n, (groups, rows) = bank.num_experts, h.shape[:2]
    last = bank.num_layers - 1
    # rows interleaved by group, so that [b, (g n h)] is read back as a view below
    x = rearrange(h, "g b d -> (b g) d").expand(n, -1, -1)  # stride 0 over n
    for layer, weight in enumerate(bank.weights):
        x = torch.bmm(x, weight)  # [n, (b g), out_l]
        if layer == last:
            x = x + bank.biases[-1][:, None, :].to(x.dtype)
            return rearrange(x, "n (b g) o -> n g b o", g=groups).contiguous()
        x = rearrange(x, "n (b g) h -> b (g n h)", g=groups)
        if bank.batch_norm:
            x = grouped_batch_norm(bank.norms[layer], x, groups, group_major=True)
        else:
            x = x + rearrange(bank.biases[layer], "n h -> (n h)").to(x.dtype)
        # a strided view, not a copy: the next bmm reads [n, (b g), h] from [b, (g n h)]
        x = bank.activation(x).view(rows, groups, n, -1).permute(2, 0, 1, 3)
        x = x.reshape(n, rows * groups, -1)
    raise AssertionError("unreachable")

def forward_feature_major(bank: StackedExperts, h: Tensor) -> Tensor:
    """Activations ``x[n, h, (g b)]``; BatchNorm on the contiguous ``[1, (n h g), b]`` view.

    Weights are read transposed (a view) and no activation is copied to change its
    layout; per-channel statistics over b are exactly each expert's in each group.
    """
    n, (groups, rows) = bank.num_experts, h.shape[:2]
    last = bank.num_layers - 1
    x = h.reshape(groups * rows, -1).t().expand(n, -1, -1)  # [n, d, (g b)], stride 0 over n
    for layer, weight in enumerate(bank.weights):
        x = torch.bmm(weight.transpose(1, 2), x)  # [n, out_l, (g b)]
        if layer == last:
            # contiguous [n, g, b, o]: a strided result sends the mixing einsum to a slow path
            out = x + bank.biases[-1][:, :, None].to(x.dtype)
            return out.transpose(1, 2).contiguous().view(n, groups, rows, -1)
        if bank.batch_norm:
            x = grouped_batch_norm(
                bank.norms[layer], x.reshape(1, -1, rows), groups, group_major=False
            ).view(n, -1, groups * rows)
        else:
            x = x + bank.biases[layer][:, :, None].to(x.dtype)
        x = bank.activation(x)
    raise AssertionError("unreachable")
