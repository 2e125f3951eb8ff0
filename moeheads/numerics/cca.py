"""Canonical correlation analysis between embedding sets (STAR's redundancy measure).

Estimator: both sets ``X[n, p]`` and ``Y[n, q]`` are centred; the covariances are
ridge-regularised relative to their scale,
``Cxx = X^T X / (n - 1) + eps * tr(X^T X / (n - 1)) / p * I`` (likewise ``Cyy``);
the canonical correlations are the singular values of
``Cxx^{-1/2} Cxy Cyy^{-1/2}``, ``min(p, q)`` of them, in decreasing order. The
computation runs in float64. ``eps = 1e-4`` by default: small enough not to bias
well-conditioned embeddings, large enough to make rank-deficient ones (collapsed
dimensions, ``n < p``) well defined. Sample canonical correlations are biased
upwards when ``n`` is not much larger than ``p + q``; use several thousand held-out
images for 128-dimensional embeddings.

STAR reports the mean canonical correlation between the invariant and equivariant
embeddings (lower means less redundant heads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from moeheads.errors import DataError


@dataclass
class CCAResult:
    """Canonical correlations between two embedding sets.

    Attributes:
        correlations: ``[min(p, q)]`` canonical correlations, decreasing, in [0, 1].
        mean: Their mean.
    """

    correlations: Tensor
    mean: float


def whiten(x: Tensor, eps: float = 1e-4) -> Tensor:
    """Centre ``x[n, p]`` and multiply by ``Cxx^{-1/2}`` (regularised, float64)."""
    if x.dim() != 2 or len(x) < 2:
        raise DataError(f"CCA needs embeddings [n >= 2, dim], got {tuple(x.shape)}")
    x = x.double()
    x = x - x.mean(dim=0)
    cov = x.T @ x / (len(x) - 1)
    ridge = eps * cov.diagonal().mean().clamp_min(1e-12)
    values, vectors = torch.linalg.eigh(cov + ridge * torch.eye(len(cov), dtype=cov.dtype,
                                                                  device=cov.device))
    return x @ (vectors * values.clamp_min(1e-30).rsqrt()) @ vectors.T


def _cca_whitened(wx: Tensor, wy: Tensor) -> CCAResult:
    if len(wx) != len(wy):
        raise DataError(f"CCA needs paired rows, got {len(wx)} and {len(wy)}")
    correlations = torch.linalg.svdvals(wx.T @ wy / (len(wx) - 1)).clamp(0, 1).float()
    return CCAResult(correlations.cpu(), float(correlations.mean()))


def cca(x: Tensor, y: Tensor, *, eps: float = 1e-4) -> CCAResult:
    """Regularised canonical correlations between paired embeddings ``x[n, p]`` and ``y[n, q]``.

    Example:
        >>> x = torch.randn(1000, 3)
        >>> mix = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
        >>> cca(x, x @ mix).mean > 0.99  # an invertible map: all correlations are 1
        True
        >>> cca(x, torch.randn(1000, 3)).mean < 0.1  # independent sets
        True
    """
    return _cca_whitened(whiten(x, eps), whiten(y, eps))


def expert_task_cca(
    expert_outputs: Tensor, embeddings: Mapping[str, Tensor], *, eps: float = 1e-4
) -> dict[str, Tensor]:
    """Mean canonical correlation between each expert's output and each task's embedding.

    It shows which experts a task's embedding draws on: an expert used only by the
    invariant task correlates with ``z_inv`` and far less with ``z_eq``; a shared
    expert correlates with both.

    Args:
        expert_outputs: ``[N, n, D]`` every expert's output on the same ``n`` images.
        embeddings: Task name -> ``[n, D']`` embedding of those images.
        eps: Relative ridge of the covariances.

    Returns:
        Task name -> ``[N]`` mean canonical correlation of each expert with that task.
    """
    experts = [whiten(e, eps) for e in expert_outputs]
    return {
        task: torch.tensor([_cca_whitened(e, wz).mean for e in experts])
        for task, wz in ((t, whiten(z, eps)) for t, z in embeddings.items())
    }


def pairwise_expert_cca(expert_outputs: Tensor, *, eps: float = 1e-4) -> Tensor:
    """``[N, N]`` mean canonical correlation between every pair of experts (1 on the diagonal).

    High off-diagonal values mean redundant experts.
    """
    experts = [whiten(e, eps) for e in expert_outputs]
    n = len(experts)
    matrix = torch.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = _cca_whitened(experts[i], experts[j]).mean
    return matrix
