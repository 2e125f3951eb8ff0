"""STAR's equivariant loss: EquiMod with a residual predictor.

Jang, Jeon, Sohn, Lee. "Soft Task-Aware Routing of Experts for Equivariant
Representation Learning". NeurIPS 2025 (arXiv 2510.27222).
"""

from __future__ import annotations

from moeheads.losses.base import LOSSES
from moeheads.losses.equivariant import PredictiveEquivariantLoss


@LOSSES.register("star_eq")
class STAREquivariantLoss(PredictiveEquivariantLoss):
    """STAR equivariant loss with a residual predictor (Jang et al., NeurIPS 2025).

    Jang, Jeon, Sohn, Lee. "Soft Task-Aware Routing of Experts for Equivariant
    Representation Learning". NeurIPS 2025 (arXiv 2510.27222).

    ``zhat_v = z_o + phi([z_o ; psi(a_v)])`` with ``psi = Linear(P, 128)`` and
    ``phi = Linear(256, 512, no bias)-BN-ReLU-Linear(512, 512, no bias)-BN-ReLU-
    Linear(512, 128)``; NT-Xent (temperature 0.2) between the ``V*B`` targets
    ``[z_1; z_2]`` and the ``V*B`` predictions ``[zhat_1; zhat_2]``: the positive of each
    target is its own prediction; everything else, the other view of the same image
    included, is a negative. No stop-gradient. The residual is STAR's change to EquiMod.

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
        >>> loss = STAREquivariantLoss()
        >>> z_views, z_o = torch.randn(2, 8, 128), torch.randn(8, 128)
        >>> params = torch.randn(2, 8, 11)
        >>> out = loss(z_views, z_o, params)
        >>> sorted(out.parts)
        ['prediction_cosine']
    """

    residual = True
