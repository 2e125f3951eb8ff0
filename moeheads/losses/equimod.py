"""EquiMod's equivariant loss: a predictor without residual plus NT-Xent.

Devillers, Lefort. "EquiMod: An Equivariance Module to Improve Visual Instance
Discrimination". ICLR 2023.
"""

from __future__ import annotations

from moeheads.losses.base import LOSSES
from moeheads.losses.equivariant import PredictiveEquivariantLoss


@LOSSES.register("equimod")
class EquiModLoss(PredictiveEquivariantLoss):
    """EquiMod equivariant loss (Devillers & Lefort, ICLR 2023).

    Devillers, Lefort. "EquiMod: An Equivariance Module to Improve Visual Instance
    Discrimination". ICLR 2023.

    ``zhat_v = phi([z_o ; psi(a_v)])`` predicts view v's embedding from the original
    image's embedding and the view's parameters; NT-Xent (temperature 0.2) pairs the
    ``V*B`` targets ``z_v`` with the ``V*B`` predictions, each target's positive being
    its own prediction and every other row a negative. psi and phi have STAR's sizes
    (``Linear(P, 128)``; ``256 -> 512 -> 512 -> 128`` with BatchNorm), which is the
    baseline STAR compares with. No stop-gradient.

    Args:
        embed_dim: Embedding width D.
        param_dim: Augmentation parameters per view P.
        param_embed_dim: Width of psi's output.
        hidden_dim: Hidden width of phi.
        temperature: NT-Xent temperature.
        gather_distributed: Gather targets and predictions from all ranks.
        predictor_norm: ``per_view`` (default: each view's own BatchNorm statistics in
            the predictor, as the authors' per-view calls) or ``joint``.

    Example:
        >>> import torch
        >>> loss = EquiModLoss()
        >>> z_views, z_o = torch.randn(2, 8, 128), torch.randn(8, 128)
        >>> params = torch.randn(2, 8, 11)
        >>> loss(z_views, z_o, params).loss.shape
        torch.Size([])
    """

    residual = False
