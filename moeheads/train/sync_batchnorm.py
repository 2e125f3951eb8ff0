"""Synchronised BatchNorm on every device: torch's on accelerators, an all-reduce one on CPU.

``torch.nn.SyncBatchNorm`` only runs on accelerators. :class:`AllReduceBatchNorm`
computes the global batch statistics with a differentiable all-reduce of
``[sum, sum of squares, count]``, so CPU (gloo) runs see exactly the statistics, and
gradients, of one process holding the whole batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


class AllReduceBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are reduced over all processes (any device)."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {input.dim()}D")

    def forward(self, input: Tensor) -> Tensor:
        synced = self.training and dist.is_available() and dist.is_initialized()
        if not synced or dist.get_world_size() == 1:
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        x = input.float()
        count = torch.tensor(
            [input.numel() / input.shape[1]], device=input.device, dtype=torch.float32
        )
        stats = torch.cat([x.sum(dims), x.square().sum(dims), count])
        stats = dist_fn.all_reduce(stats)
        channels = input.shape[1]
        total = stats[-1]
        mean = stats[:channels] / total
        var = stats[channels : 2 * channels] / total - mean.square()
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else (
                    1.0 / float(self.num_batches_tracked)
                )
                unbiased = var * total / (total - 1).clamp_min(1)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        shape = [1, channels] + [1] * (input.dim() - 2)
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(input.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``module`` synchronised across processes.

    Uses ``torch.nn.SyncBatchNorm`` on CUDA and :class:`AllReduceBatchNorm` elsewhere.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_all_reduce(module)


def _convert_all_reduce(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, AllReduceBatchNorm):
        new = AllReduceBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )
        if module.affine:
            with torch.no_grad():
                new.weight = module.weight
                new.bias = module.bias
        if module.track_running_stats:
            new.running_mean = module.running_mean
            new.running_var = module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        return new
    for name, child in module.named_children():
        module.add_module(name, _convert_all_reduce(child))
    return module
