"""Synchronised BatchNorm on every device: torch's on accelerators, an all-reduce one on CPU.

``torch.nn.SyncBatchNorm`` only runs on accelerators. :class:`AllReduceBatchNorm`
computes the global batch statistics with a differentiable all-reduce of
``[sum, sum of squares, count]``, so CPU (gloo) runs see exactly the statistics, and
gradients, of one process holding the whole batch.

Conversion keeps every layer's full behaviour: plain BatchNorm layers (and subclasses
that keep BatchNorm's forward) become synchronised BatchNorm, timm's ``BatchNormAct2d``
(BatchNorm, then drop, then activation) becomes a synchronised layer that still applies
its drop and activation, and any other subclass that changes the forward is refused
rather than silently reduced to a plain BatchNorm.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from moeheads.errors import ConfigError


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


class AllReduceBatchNormAct(AllReduceBatchNorm):
    """:class:`AllReduceBatchNorm` followed by ``drop`` and ``act``, like timm's ``BatchNormAct2d``.

    Built by :func:`convert_sync_batchnorm` from a ``BatchNormAct2d``, whose ``drop`` and
    ``act`` children it keeps (same state-dict keys).
    """

    drop: nn.Module
    act: nn.Module

    def forward(self, input: Tensor) -> Tensor:
        return self.act(self.drop(super().forward(input)))


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``module`` synchronised across processes, each layer's behaviour kept.

    Uses ``torch.nn.SyncBatchNorm`` (timm's ``SyncBatchNormAct`` for its
    ``BatchNormAct2d``) on CUDA and :class:`AllReduceBatchNorm`
    (:class:`AllReduceBatchNormAct`) elsewhere. Weights, running statistics and
    train/eval mode carry over, so a converted module in eval mode computes exactly what
    it did before.

    Raises:
        ConfigError: A BatchNorm subclass overrides the forward in a way this function does
            not know (converting it would drop that behaviour).
    """
    return _convert(module, device.type == "cuda")


def _convert(module: nn.Module, cuda: bool) -> nn.Module:
    if isinstance(module, _BatchNorm) and not _is_synced(module):
        module = _synced_copy(module, cuda)
    for name, child in module.named_children():
        module.add_module(name, _convert(child, cuda))
    return module


def holds_synced_batchnorm(module: nn.Module) -> bool:
    """Whether ``module`` or a submodule is a synchronised BatchNorm."""
    return any(_is_synced(m) for m in module.modules())


def _is_synced(module: nn.Module) -> bool:
    return isinstance(module, (AllReduceBatchNorm, nn.SyncBatchNorm))


def _timm_norm_act() -> tuple[type[nn.Module], type[nn.Module]] | None:
    """timm's ``(BatchNormAct2d, SyncBatchNormAct)`` when timm is loaded, else ``None``."""
    import sys

    norm_act = sys.modules.get("timm.layers.norm_act")
    if norm_act is None:
        return None
    return norm_act.BatchNormAct2d, norm_act.SyncBatchNormAct


def _synced_copy(module: _BatchNorm, cuda: bool) -> nn.Module:
    timm_classes = _timm_norm_act()
    with_act = timm_classes is not None and isinstance(module, timm_classes[0])
    if with_act:
        assert timm_classes is not None
        cls: type[nn.Module] = timm_classes[1] if cuda else AllReduceBatchNormAct
    elif type(module).forward is _BatchNorm.forward:
        cls = nn.SyncBatchNorm if cuda else AllReduceBatchNorm
    else:
        raise ConfigError(
            f"cannot synchronise {type(module).__module__}.{type(module).__name__}: it "
            "overrides BatchNorm's forward, and a plain synchronised BatchNorm would drop "
            "what it adds; convert it yourself or train in one process"
        )
    new = cls(module.num_features, module.eps, module.momentum, module.affine,
              module.track_running_stats)
    if module.affine:
        new.weight = module.weight
        new.bias = module.bias
    if module.track_running_stats:
        new.running_mean = module.running_mean
        new.running_var = module.running_var
        new.num_batches_tracked = module.num_batches_tracked
    if with_act:
        new.drop = module.drop
        new.act = module.act
    new.train(module.training)
    return new
