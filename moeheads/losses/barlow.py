"""Barlow Twins: redundancy reduction through the cross-correlation matrix.

Zbontar, Jing, Misra, LeCun, Deny. "Barlow Twins: Self-Supervised Learning via
Redundancy Reduction". ICML 2021.
"""

from __future__ import annotations

import torch
from torch import Tensor

from moeheads.losses.base import LOSSES, LossOutput
from moeheads.losses.invariant import InvariantLoss
from moeheads.runtime.gather import gather_if


def standardise(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-dimension ``(z - mean) / sqrt(var + eps)`` over the batch (biased variance)."""
    mean = z.mean(dim=0)
    var = z.var(dim=0, unbiased=False)
    return (z - mean) / torch.sqrt(var + eps)


@LOSSES.register("barlow")
class BarlowTwinsLoss(InvariantLoss):
    """Barlow Twins loss (Zbontar et al., ICML 2021).

    Zbontar, Jing, Misra, LeCun, Deny. "Barlow Twins: Self-Supervised Learning via
    Redundancy Reduction". ICML 2021.

    ``L = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2`` with the cross-correlation
    ``C = Zn1^T Zn2 / B`` of the batch-standardised embeddings. The paper defines C as
    the exact correlation; the authors' code and ``lightly.loss.BarlowTwinsLoss``
    (which this equals) standardise with BatchNorm statistics, i.e. the biased variance
    plus ``eps = 1e-5``, as done here. The paper's lambda is 5e-3 (the code uses 0.0051).
    The matrix is computed in float32 even under autocast; under torch.distributed the
    embeddings are gathered, so C is that of the global batch.

    Args:
        redundancy_weight: lambda, the weight of the off-diagonal term.
        eps: Added to the variance when standardising.
        gather_distributed: Gather embeddings from all ranks (with gradient).

    Example:
        >>> loss = BarlowTwinsLoss()
        >>> out = loss(torch.randn(16, 32), torch.randn(16, 32))
        >>> sorted(out.parts)
        ['on_diagonal', 'redundancy']
    """

    def __init__(
        self, redundancy_weight: float = 5e-3, eps: float = 1e-5, gather_distributed: bool = True
    ) -> None:
        super().__init__()
        self.redundancy_weight = redundancy_weight
        self.eps = eps
        self.gather_distributed = gather_distributed

    def forward(self, z1: Tensor, z2: Tensor) -> LossOutput:
        """Barlow Twins between ``z1[B, D]`` and ``z2[B, D]`` (B >= 2)."""
        self.check_pair(z1, z2)
        with torch.autocast(device_type=z1.device.type, enabled=False):
            z1 = gather_if(z1.float(), self.gather_distributed, "barlow")
            z2 = gather_if(z2.float(), self.gather_distributed, "barlow")
            c = standardise(z1, self.eps).T @ standardise(z2, self.eps) / z1.shape[0]
            diagonal = torch.diagonal(c)
            on_diagonal = (1 - diagonal).pow(2).sum()
            redundancy = c.pow(2).sum() - diagonal.pow(2).sum()
            loss = on_diagonal + self.redundancy_weight * redundancy
        return LossOutput(loss, {"on_diagonal": on_diagonal, "redundancy": redundancy})
