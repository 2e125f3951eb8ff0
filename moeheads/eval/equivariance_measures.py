"""Equivariance measured on embeddings: retrieval of transformed views and prediction error.

Given the embedding ``z_i`` of image ``i``'s original, the embedding ``t_i`` of a view of
it, and the view's parameters ``a_i``, a predictor ``P`` maps ``(z_i, a_i)`` to
``p_i = P(z_i, a_i)``, which should be ``t_i``. All embeddings are L2-normalised first
(the equivariant losses compare directions only).

- **Retrieval** (higher is better; SIE, Garrido et al. 2023): ``p_i`` is the query and
  the gallery is the views ``t_1 .. t_n`` of all held-out images (same view index);
  ``rank_i = 1 + #{j : cos(p_i, t_j) > cos(p_i, t_i)}``. Reported: mean reciprocal rank
  ``MRR = mean 1 / rank_i``, and hit rates ``H@k = mean [rank_i <= k]`` for k = 1, 5.
- **Prediction error** (lower is better): ``sum_i ||p_i - t_i||^2 / sum_i ||z_i - t_i||^2``,
  the squared error of the prediction relative to predicting no change (``p_i = z_i``,
  whose error is 1). A ratio of sums, not a mean of per-image ratios, so views that
  barely move the embedding do not dominate.

For a method without a predictor (SimCLR, AugSelf), and for a like-for-like comparison
of all methods, :func:`fit_predictor` fits STAR's residual predictor (with STAR's
equivariant loss) on frozen embeddings of one part of the images; every measure is then
taken on the other part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.errors import DataError
from moeheads.losses.star_eq import STAREquivariantLoss

Predictor = Callable[[Tensor, Tensor], Tensor]  # (z [n, D], params [V, n, P]) -> [V, n, D]


def retrieval(queries: Tensor, gallery: Tensor, *, chunk: int = 1024) -> dict[str, float]:
    """MRR, H@1 and H@5 of query ``i`` retrieving gallery item ``i`` (cosine similarity).

    Args:
        queries: ``[n, D]``.
        gallery: ``[n, D]``; item ``i`` is the positive of query ``i``.
    """
    if queries.shape != gallery.shape or queries.dim() != 2:
        raise DataError(f"retrieval needs paired [n, D] sets, got {tuple(queries.shape)} and "
                        f"{tuple(gallery.shape)}")
    q, g = F.normalize(queries.float(), dim=1), F.normalize(gallery.float(), dim=1)
    ranks = []
    for start in range(0, len(q), chunk):
        sims = q[start:start + chunk] @ g.T
        rows = torch.arange(len(sims))
        own = sims[rows, rows + start]
        ranks.append(1 + (sims > own[:, None]).sum(dim=1))
    rank = torch.cat(ranks).double()
    return {"mrr": float((1 / rank).mean()), "h@1": float((rank <= 1).double().mean()),
            "h@5": float((rank <= 5).double().mean())}


def prediction_error(predicted: Tensor, original: Tensor, target: Tensor) -> float:
    """``sum ||p - t||^2 / sum ||z - t||^2`` over rows, on L2-normalised embeddings."""
    p, z, t = (F.normalize(x.float(), dim=-1) for x in (predicted, original, target))
    moved = (z - t).square().sum()
    if float(moved) == 0:
        raise DataError("prediction error: the views' embeddings equal the originals'")
    return float((p - t).square().sum() / moved)


@dataclass
class EquivarianceScores:
    """Retrieval and prediction error of one predictor, averaged over views."""

    mrr: float
    hit1: float
    hit5: float
    prediction_error: float

    def summary(self, label: str) -> dict[str, float]:
        """Flat ``{"<label> MRR": ...}``."""
        return {f"{label} MRR": self.mrr, f"{label} H@1": self.hit1,
                f"{label} H@5": self.hit5, f"{label} prediction error": self.prediction_error}


def score_predictor(predictor: Predictor, z: Tensor, views: Tensor,
                    params: Tensor) -> EquivarianceScores:
    """Scores of ``predictor`` on originals ``z[n, D]``, views ``[V, n, D]`` and their
    parameters ``params[V, n, P]``."""
    with torch.no_grad():
        predicted = predictor(z, params)
    per_view = [retrieval(predicted[v], views[v]) for v in range(len(views))]
    mean = {k: sum(r[k] for r in per_view) / len(per_view) for k in per_view[0]}
    error = prediction_error(predicted, z.expand_as(views), views)
    return EquivarianceScores(mean["mrr"], mean["h@1"], mean["h@5"], error)


def fit_predictor(z: Tensor, views: Tensor, params: Tensor, *, epochs: int = 10,
                  batch_size: int = 256, lr: float = 1e-3, hidden_dim: int = 512,
                  seed: int = 0) -> Predictor:
    """STAR's residual predictor fitted with STAR's equivariant loss on frozen embeddings.

    Args:
        z: ``[n, D]`` originals' embeddings.
        views: ``[V, n, D]`` views' embeddings.
        params: ``[V, n, P]`` (standardised) view parameters.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        loss = STAREquivariantLoss(embed_dim=z.shape[1], param_dim=params.shape[-1],
                                   hidden_dim=hidden_dim, gather_distributed=False)
    optimizer = torch.optim.Adam(loss.parameters(), lr=lr)
    z, views, params = z.float(), views.float(), params.float()
    loss.train()
    for _ in range(epochs):
        order = torch.randperm(len(z), generator=generator)
        for start in range(0, len(z) - 1, batch_size):
            rows = order[start:start + batch_size]
            if len(rows) < 2:
                continue
            value = loss(views[:, rows], z[rows], params[:, rows]).loss
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
    loss.eval()
    return loss.predictor


def split_rows(n: int, fit_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded disjoint ``(fit, test)`` row indices."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cut = min(max(1, round(fit_fraction * n)), n - 2)
    return order[:cut], order[cut:]


def equivariance_scores(z: Tensor, views: Tensor, params: Tensor, *,
                        own: Predictor | None = None, fit_fraction: float = 0.5,
                        seed: int = 0, fit_epochs: int = 10,
                        fit_hidden_dim: int = 512) -> dict[str, EquivarianceScores]:
    """Scores on held-out rows of: no change (``z``), a predictor fitted on the other
    rows, and the method's own predictor where it has one."""
    if len(z) < 4:
        raise DataError(f"equivariance scores need at least 4 images, got {len(z)}")
    fit, test = split_rows(len(z), fit_fraction, seed)
    fitted = fit_predictor(z[fit], views[:, fit], params[:, fit], epochs=fit_epochs,
                           hidden_dim=fit_hidden_dim, seed=seed)
    held = (z[test], views[:, test], params[:, test])
    out = {"no change": score_predictor(lambda zz, pp: zz.expand(len(pp), -1, -1), *held),
           "fitted": score_predictor(fitted, *held)}
    if own is not None:
        out["own"] = score_predictor(own, *held)
    return out
