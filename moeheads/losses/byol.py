"""BYOL: an online predictor regresses a momentum target's projection.

Grill, Strub, Altché, Tallec, Richemond, Buchatskaya, Doersch, Pires, Guo, Azar,
Piot, Kavukcuoglu, Munos, Valko. "Bootstrap Your Own Latent: A New Approach to
Self-Supervised Learning". NeurIPS 2020.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from moeheads.losses.base import LOSSES, LossOutput, TaskInputs, check_same_shape, mean_outputs
from moeheads.losses.ema import EMA
from moeheads.losses.invariant import InvariantLoss, view_pairs
from moeheads.losses.mlp import mlp


def regression_term(p: Tensor, t: Tensor) -> Tensor:
    """``mean_b ||p/|p| - t/|t|||^2 = mean_b (2 - 2 cos(p, t))``, with ``t`` detached."""
    return (2 - 2 * F.cosine_similarity(p.float(), t.detach().float(), dim=-1)).mean()


@LOSSES.register("byol")
class BYOLLoss(InvariantLoss):
    """BYOL loss with its predictor (Grill et al., NeurIPS 2020).

    Grill et al. "Bootstrap Your Own Latent: A New Approach to Self-Supervised
    Learning". NeurIPS 2020.

    ``L = mean(2 - 2 cos(q(z1), t2)) + mean(2 - 2 cos(q(z2), t1))``: the predictor
    ``q = Linear(D, hidden, no bias)-BN-ReLU-Linear(hidden, D)`` (owned by the loss)
    maps online embeddings z to predictions of the other view's target embedding t,
    which gets no gradient. The sum of both directions follows the paper
    (``L + L~``). The targets come from a momentum copy of the backbone and heads,
    :class:`~moeheads.losses.ema.EMA`, built by :meth:`make_target` and updated by the
    training engine after every step; when no targets are given, the detached online
    embeddings are used (a momentum of 0, as in SimSiam).

    BYOL's projections are 256-dimensional; moeheads' heads give 128 by default, so
    ``embed_dim`` is 128 here. The predictor hidden width is the paper's 4096.

    Args:
        embed_dim: Embedding width D.
        hidden_dim: Predictor hidden width.
        base_momentum: tau_base of the target network (0.996).
        final_momentum: tau at the end of training (1.0).

    Example:
        >>> import torch
        >>> loss = BYOLLoss(embed_dim=32, hidden_dim=64)
        >>> z1, z2 = torch.randn(8, 32), torch.randn(8, 32)
        >>> out = loss(z1, z2, t1=torch.randn(8, 32), t2=torch.randn(8, 32))
        >>> bool(0 <= out.loss <= 8)
        True
    """

    inputs = frozenset({"views", "targets"})

    def __init__(
        self,
        embed_dim: int = 128,
        hidden_dim: int = 4096,
        base_momentum: float = 0.996,
        final_momentum: float = 1.0,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.base_momentum = base_momentum
        self.final_momentum = final_momentum
        self.predictor = mlp(embed_dim, hidden_dim, embed_dim, num_hidden=1)

    def make_target(self, online: nn.Module) -> EMA:
        """A momentum target copy of ``online`` (e.g. backbone and heads) with this schedule."""
        return EMA(online, self.base_momentum, self.final_momentum)

    def forward(
        self, z1: Tensor, z2: Tensor, t1: Tensor | None = None, t2: Tensor | None = None
    ) -> LossOutput:
        """BYOL between online ``z1, z2 [B, D]`` and target ``t1, t2 [B, D]`` (detached)."""
        self.check_pair(z1, z2)
        t1 = z1 if t1 is None else t1
        t2 = z2 if t2 is None else t2
        check_same_shape(z1, t1, "byol", ("z1", "t1"))
        check_same_shape(z2, t2, "byol", ("z2", "t2"))
        forward_term = regression_term(self.predictor(z1), t2)
        backward_term = regression_term(self.predictor(z2), t1)
        return LossOutput(forward_term + backward_term)

    def from_inputs(self, inputs: TaskInputs) -> LossOutput:
        """Mean over view pairs, with targets from ``inputs.targets`` when present."""
        z = inputs.views
        if inputs.targets is None:
            return super().from_inputs(inputs)
        self.check_views(z)
        check_same_shape(z, inputs.targets, "byol", ("views", "targets"))
        t = inputs.targets
        return mean_outputs([self(z[i], z[j], t[i], t[j]) for i, j in view_pairs(z.shape[0])])
