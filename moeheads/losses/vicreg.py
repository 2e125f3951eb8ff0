"""VICReg: variance-invariance-covariance regularisation.

Bardes, Ponce, LeCun. "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning". ICLR 2022.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.losses.base import LOSSES, LossOutput
from moeheads.losses.invariant import InvariantLoss
from moeheads.runtime.gather import gather_if


def variance_term(z: Tensor, eps: float = 1e-4) -> Tensor:
    """``mean_j relu(1 - sqrt(Var(z_j) + eps))`` with the unbiased variance over the batch."""
    return F.relu(1.0 - torch.sqrt(z.var(dim=0) + eps)).mean()


def covariance_term(z: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariances divided by D."""
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (z.shape[0] - 1)
    off = cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()
    return off / z.shape[1]


@LOSSES.register("vicreg")
class VICRegLoss(InvariantLoss):
    """VICReg loss (Bardes, Ponce, LeCun, ICLR 2022).

    Bardes, Ponce, LeCun. "VICReg: Variance-Invariance-Covariance Regularization for
    Self-Supervised Learning". ICLR 2022.

    ``L = lambda * s(Z, Z') + mu * (v(Z) + v(Z')) / 2 + nu * (c(Z) + c(Z'))`` with the
    invariance ``s`` the mean squared error, the variance hinge
    ``v(Z) = mean_j relu(1 - sqrt(Var(Z_j) + eps))`` and the covariance
    ``c(Z) = sum_{i != j} C(Z)_ij^2 / D``. The paper's equation sums ``v(Z) + v(Z')``;
    the authors' code (and ``lightly.loss.VICRegLoss``, which this equals) averages the
    two variance terms, as done here. Statistics are computed in float32 even under
    autocast; under torch.distributed all three terms use the global batch.

    Args:
        invariance_weight: lambda (25 in the paper).
        variance_weight: mu (25).
        covariance_weight: nu (1).
        eps: Added to the variance before the square root.
        gather_distributed: Gather embeddings from all ranks (with gradient).

    Example:
        >>> loss = VICRegLoss()
        >>> out = loss(torch.randn(16, 32), torch.randn(16, 32))
        >>> sorted(out.parts)
        ['covariance', 'invariance', 'variance']
    """

    def __init__(
        self,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        eps: float = 1e-4,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__()
        self.invariance_weight = invariance_weight
        self.variance_weight = variance_weight
        self.covariance_weight = covariance_weight
        self.eps = eps
        self.gather_distributed = gather_distributed

    def forward(self, z1: Tensor, z2: Tensor) -> LossOutput:
        """VICReg between ``z1[B, D]`` and ``z2[B, D]`` (B >= 2)."""
        self.check_pair(z1, z2)
        with torch.autocast(device_type=z1.device.type, enabled=False):
            z1 = gather_if(z1.float(), self.gather_distributed, "vicreg")
            z2 = gather_if(z2.float(), self.gather_distributed, "vicreg")
            invariance = F.mse_loss(z1, z2)
            variance = (variance_term(z1, self.eps) + variance_term(z2, self.eps)) / 2
            covariance = covariance_term(z1) + covariance_term(z2)
            loss = (
                self.invariance_weight * invariance
                + self.variance_weight * variance
                + self.covariance_weight * covariance
            )
        parts = {"invariance": invariance, "variance": variance, "covariance": covariance}
        return LossOutput(loss, parts)
