"""BatchNorm over several groups of rows at once, each group with its own statistics.

STAR normalises each view group (view 1, view 2, the original image) with its own
batch statistics, as separate calls of the heads would. :func:`grouped_batch_norm`
gives exactly that from one call: the G groups' channels are laid side by side, so a
single normalisation over ``G * C`` channels computes every group's statistics, while
the affine parameters stay shared and the running statistics are updated group
after group, as G calls in turn would update them.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm


def grouped_batch_norm(norm: _BatchNorm, x: Tensor, groups: int, group_major: bool) -> Tensor:
    """``norm`` applied to ``groups`` groups whose channels are stacked on dim 1.

    Equals applying ``norm`` to each group in turn, in outputs, gradients of the input
    and the affine parameters, and running statistics. Works for any BatchNorm module
    (also synchronised ones), since ``norm``'s own forward does the normalisation.

    Args:
        norm: BatchNorm over C channels.
        x: Input with ``groups * C`` channels on dim 1.
        groups: Number of groups G.
        group_major: Channel ``g * C + c`` is channel c of group g when true, channel
            ``c * G + g`` when false.
    """
    if groups == 1:
        return norm(x)

    def spread(t: Tensor) -> Tensor:
        return t.repeat(groups) if group_major else t.repeat_interleave(groups)

    def per_group(t: Tensor) -> Tensor:
        return t.view(groups, -1) if group_major else t.view(-1, groups).t()

    tensors: dict[str, Tensor] = {}
    if norm.affine:
        tensors["weight"] = spread(norm.weight)
        tensors["bias"] = spread(norm.bias)
    tracked = norm.running_mean is not None and norm.running_var is not None
    updates = tracked and norm.training
    if tracked:
        assert norm.running_mean is not None and norm.running_var is not None
        if updates:
            # from zero buffers, each group's update is just momentum * its batch statistics
            tensors["running_mean"] = torch.zeros_like(spread(norm.running_mean))
            tensors["running_var"] = torch.zeros_like(tensors["running_mean"])
            tensors["num_batches_tracked"] = torch.zeros_like(norm.num_batches_tracked)
        else:
            tensors["running_mean"] = spread(norm.running_mean)
            tensors["running_var"] = spread(norm.running_var)
    out = functional_call(norm, tensors, (x,))
    if updates:
        _update_in_turn(
            norm, per_group(tensors["running_mean"]), per_group(tensors["running_var"])
        )
    return out


@torch.no_grad()
def _update_in_turn(norm: _BatchNorm, mean_updates: Tensor, var_updates: Tensor) -> None:
    """Fold per-group updates ``[G, C]`` (made from zero buffers) into the running stats.

    With a fixed momentum m an update from zero is ``m * stat``, so each group's step
    ``r <- (1 - m) * r + m * stat`` is ``r * (1 - m) + update``; without one (a
    cumulative average) the update is the statistic itself.
    """
    assert norm.running_mean is not None and norm.running_var is not None
    for mean, var in zip(mean_updates, var_updates, strict=True):
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:
            weight = 1.0 / float(norm.num_batches_tracked)
            norm.running_mean.lerp_(mean, weight)
            norm.running_var.lerp_(var, weight)
        else:
            norm.running_mean.mul_(1 - norm.momentum).add_(mean)
            norm.running_var.mul_(1 - norm.momentum).add_(var)
