"""Redundancy between two embedding sets, by four estimators of canonical correlation.

All four start from the regularised canonical correlations of
:mod:`moeheads.numerics.cca` (``rho_1 >= ... >= rho_m``, ``m = min(p, q)``) and
differ in which correlations they keep and how they weigh them:

- ``mean``: ``(1/m) sum_i rho_i`` (STAR's measure);
- ``top_k``: the mean of the ``k`` largest, ``(1/k) sum_{i <= k} rho_i``;
- ``svcca`` (Raghu et al., NeurIPS 2017): each centred set is first reduced by SVD to
  its leading directions that keep ``variance`` (99%) of its total variance,
  ``X -> U_r S_r``; the mean canonical correlation of the reduced sets;
- ``pwcca`` (Morcos et al., NeurIPS 2018): ``sum_i alpha_i rho_i`` with
  ``alpha_i ∝ sum_j |<h_i, x_j>|``, where ``h_i`` are the canonical variates of the set
  with fewer dimensions (the first on a tie), orthonormalised in order (QR), and
  ``x_j`` its centred columns: directions that carry more of the set count more.

With few images per dimension every estimator is biased upwards (see
:mod:`~moeheads.numerics.cca`); results therefore name the images and dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from moeheads.errors import ConfigError, DataError
from moeheads.numerics.cca import whiten

ESTIMATORS = ("mean", "svcca", "pwcca", "top_k")


@dataclass
class PreparedSet:
    """One embedding set ready for any estimator (float64).

    Attributes:
        centred: ``[n, p]`` centred embeddings.
        whitened: ``[n, p]`` centred and whitened.
        reduced: ``[n, r]`` whitened SVD reduction keeping ``variance`` of the variance.
        gram: ``[p, p]`` ``whitened^T whitened``.
        cross: ``[p, p]`` ``whitened^T centred``.
    """

    centred: Tensor
    whitened: Tensor
    reduced: Tensor
    gram: Tensor
    cross: Tensor


def svd_reduce(x: Tensor, variance: float = 0.99) -> Tensor:
    """``U_r S_r`` of centred ``x[n, p]``: the fewest leading directions whose squared
    singular values keep at least ``variance`` of the total."""
    if not 0 < variance <= 1:
        raise ConfigError(f"variance must be in (0, 1], got {variance}")
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    energy = (s * s).cumsum(0)
    keep = int(torch.searchsorted(energy, variance * energy[-1] * (1 - 1e-12))) + 1
    return u[:, :keep] * s[:keep]


def prepare(x: Tensor, *, eps: float = 1e-4, variance: float = 0.99) -> PreparedSet:
    """Centre, whiten and SVD-reduce ``x[n, p]`` once, for many comparisons."""
    if x.dim() != 2 or len(x) < 2:
        raise DataError(f"redundancy needs embeddings [n >= 2, dim], got {tuple(x.shape)}")
    centred = x.double() - x.double().mean(dim=0)
    whitened = whiten(centred, eps)
    return PreparedSet(centred, whitened, whiten(svd_reduce(centred, variance), eps),
                       whitened.T @ whitened, whitened.T @ centred)


@dataclass
class Redundancy:
    """The four estimators between two sets, and what they were computed on.

    Attributes:
        mean: Mean canonical correlation.
        svcca: Mean canonical correlation after the SVD reduction.
        pwcca: Projection-weighted mean.
        top_k: Mean of the ``k`` largest.
        k: The ``k`` of ``top_k`` (at most ``min(p, q)``).
        correlations: ``[min(p, q)]`` canonical correlations, decreasing.
        images: Paired rows ``n``.
        dims: ``(p, q)``.
        svcca_dims: Dimensions kept by the SVD reduction of each set.
    """

    mean: float
    svcca: float
    pwcca: float
    top_k: float
    k: int
    correlations: Tensor
    images: int
    dims: tuple[int, int]
    svcca_dims: tuple[int, int]

    def summary(self) -> dict[str, float]:
        """The estimators and their sizes, as a flat table."""
        return {"mean": self.mean, "svcca": self.svcca, "pwcca": self.pwcca,
                "top_k": self.top_k, "k": self.k, "images": self.images,
                "dims": self.dims[0], "svcca dims": min(self.svcca_dims)}


def _canonical(wx: Tensor, wy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Correlations ``[m]``, and the directions of each whitened set ``[p, m]``, ``[q, m]``."""
    if len(wx) != len(wy):
        raise DataError(f"redundancy needs paired rows, got {len(wx)} and {len(wy)}")
    u, s, vh = torch.linalg.svd(wx.T @ wy / (len(wx) - 1), full_matrices=False)
    return s.clamp(0, 1), u, vh.T


def projection_weights(prepared: PreparedSet, directions: Tensor) -> Tensor:
    """PWCCA's ``alpha`` (sums to 1) of one set's canonical variates ``H = whitened @ directions``.

    The variates' QR factor ``Q = H R^-1`` is never formed: with ``R^T R = H^T H`` (a
    Cholesky factor, from the set's ``gram``), ``Q^T x = R^-T directions^T cross``, so a
    comparison costs ``p x p`` products beyond the cross-covariance.
    """
    gram = directions.T @ prepared.gram @ directions
    lower = torch.linalg.cholesky(gram + 1e-12 * gram.diagonal().mean() * torch.eye(
        len(gram), dtype=gram.dtype, device=gram.device))
    projections = torch.linalg.solve_triangular(lower, directions.T @ prepared.cross, upper=False)
    alpha = projections.abs().sum(dim=1)
    return alpha / alpha.sum().clamp_min(1e-300)


def compare_prepared(a: PreparedSet, b: PreparedSet, *, top_k: int = 10) -> Redundancy:
    """All four estimators between two prepared sets."""
    if top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    rho, u, v = _canonical(a.whitened, b.whitened)
    first = a.centred.shape[1] <= b.centred.shape[1]
    weights = projection_weights(a, u) if first else projection_weights(b, v)
    reduced, _, _ = _canonical(a.reduced, b.reduced)
    k = min(top_k, len(rho))
    return Redundancy(
        mean=float(rho.mean()), svcca=float(reduced.mean()), pwcca=float((weights * rho).sum()),
        top_k=float(rho[:k].mean()), k=k, correlations=rho.float().cpu(), images=len(a.centred),
        dims=(a.centred.shape[1], b.centred.shape[1]),
        svcca_dims=(a.reduced.shape[1], b.reduced.shape[1]),
    )


def redundancy(x: Tensor, y: Tensor, *, eps: float = 1e-4, variance: float = 0.99,
               top_k: int = 10) -> Redundancy:
    """Mean, SVCCA, PWCCA and top-k canonical correlation between ``x[n, p]`` and ``y[n, q]``.

    Example:
        >>> m = torch.randn(500, 3)
        >>> a, b, c = torch.linalg.qr(m - m.mean(0))[0].T  # centred, orthonormal
        >>> x, y = torch.stack([a, 3 * b], 1), torch.stack([a, c], 1)
        >>> r = redundancy(x, y, eps=1e-9)  # correlations 1 (a) and 0
        >>> round(r.mean, 3), round(r.pwcca, 3), round(r.top_k, 3)  # b weighs 3x a
        (0.5, 0.25, 0.5)
    """
    return compare_prepared(prepare(x, eps=eps, variance=variance),
                            prepare(y, eps=eps, variance=variance), top_k=top_k)


def pairwise_redundancy(sets: list[PreparedSet], *, top_k: int = 10) -> dict[str, Tensor]:
    """Estimator -> ``[N, N]`` matrix between every pair of prepared sets (1 on the diagonal)."""
    n = len(sets)
    out = {name: torch.eye(n) for name in ESTIMATORS}
    for i in range(n):
        for j in range(i + 1, n):
            r = compare_prepared(sets[i], sets[j], top_k=top_k)
            for name in ESTIMATORS:
                out[name][i, j] = out[name][j, i] = getattr(r, name)
    return out
