"""All-gather across processes with gradient; a no-op when torch.distributed is off.

Contrastive losses need negatives from the global batch and batch statistics
(VICReg, Barlow Twins) need the global batch. :func:`all_gather` concatenates a
tensor from every rank along dimension 0. Its backward pass sums the gradient over
ranks and returns this rank's slice, so that after DDP averages parameter
gradients they equal the gradients of one process that saw the whole batch.
Every rank must pass the same shape (use ``drop_last=True`` in the sampler).
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """Number of processes (1 when torch.distributed is not initialised)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Rank of this process (0 when torch.distributed is not initialised)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        chunks = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(chunks, x.contiguous())
        return torch.cat(chunks)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad.chunk(world_size())[rank()]


def all_gather(x: Tensor) -> Tensor:
    """``x`` of every rank concatenated along dimension 0, with gradient.

    Example:
        >>> all_gather(torch.ones(2, 3)).shape  # one process: unchanged
        torch.Size([2, 3])
    """
    if world_size() == 1:
        return x
    return _AllGather.apply(x)


def gather_if(x: Tensor, enabled: bool, owner: str) -> Tensor:
    """:func:`all_gather` when ``enabled``; warn when gathering is off under DDP."""
    if world_size() == 1:
        return x
    if enabled:
        return all_gather(x)
    warnings.warn(
        f"{owner}: gather_distributed=False under torch.distributed: the loss sees only "
        "this rank's batch",
        stacklevel=3,
    )
    return x
