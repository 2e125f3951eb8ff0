"""One-vs-rest L2 logistic regression with a penalised intercept (liblinear's problem).

AugSelf's few-shot evaluation (which STAR uses) fits scikit-learn's
``LogisticRegression(solver="liblinear")`` (``C = 1``) on the support features of each
episode: one binary problem per class (one-vs-rest), each minimising::

    1/2 ||w~||^2 + C sum_i log(1 + exp(-y_i w~ . x~_i)),   x~ = [x, 1], y_i in {-1, +1}

so the intercept (the last entry of ``w~``) is penalised like every weight
(liblinear's ``intercept_scaling = 1``). A query is given the class whose binary
decision value ``w~ . x~`` is largest.

With few support rows (``n = N K``) the minimiser lies in the span of the rows,
``w~ = X~^T beta``, so each problem is solved by Newton's method on the ``n``
coefficients ``beta`` with the Gram matrix ``K = X~ X~^T`` (``n x n``, 5 or 25 for
5-way 1/5-shot), batched over episodes and classes, in float64, with a line search
over step sizes. The minimiser is unique, so it equals liblinear's up to liblinear's
stopping tolerance (tested episode by episode against scikit-learn).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _objective(beta: Tensor, margins: Tensor, signs: Tensor, c: float) -> Tensor:
    """``1/2 beta^T K beta + C sum softplus(-y m)`` with ``m = K beta``: ``[..., n] -> [...]``."""
    return 0.5 * (beta * margins).sum(-1) + c * F.softplus(-signs * margins).sum(-1)


def fit_ovr_logistic(
    support: Tensor, labels: Tensor, num_classes: int, c: float = 1.0, max_iter: int = 50
) -> Tensor:
    """Coefficients ``beta[E, C, n]`` of the one-vs-rest problems of ``E`` episodes.

    Args:
        support: Support features ``[E, n, d]``.
        labels: Support labels ``[E, n]`` in ``[0, num_classes)``.
        num_classes: Classes per episode.
        c: Inverse regularisation strength (scikit-learn's ``C``).
        max_iter: Most Newton iterations (it stops earlier once converged).

    Returns:
        ``beta``: class k's weights are ``w~_k = X~^T beta[:, k]`` (see
        :func:`ovr_decision`).
    """
    x = torch.cat([support.double(), support.new_ones(*support.shape[:-1], 1).double()], -1)
    gram = x @ x.transpose(-1, -2)  # [E, n, n]
    signs = torch.where(F.one_hot(labels.long(), num_classes).transpose(-1, -2).bool(),
                        1.0, -1.0).double()  # [E, C, n]
    beta = torch.zeros_like(signs)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    steps = 0.5 ** torch.arange(31, dtype=gram.dtype, device=gram.device)  # 1 .. 2^-30
    gram_c = gram.unsqueeze(1)  # [E, 1, n, n]
    for _ in range(max_iter):
        margins = (gram_c @ beta.unsqueeze(-1)).squeeze(-1)
        p = torch.sigmoid(-signs * margins)
        residual = beta - c * signs * p  # gradient = K residual
        curvature = p * (1 - p)  # [E, C, n]
        system = eye + c * curvature.unsqueeze(-1) * gram_c  # I + C D K
        delta = torch.linalg.solve(system, residual.unsqueeze(-1)).squeeze(-1)
        k_delta = (gram_c @ delta.unsqueeze(-1)).squeeze(-1)
        # objective at beta - t delta for every step t; keep the best (t = 0 included)
        t = steps.view(-1, 1, 1, 1)
        trial = _objective(beta - t * delta, margins - t * k_delta, signs, c)  # [S, E, C]
        current = _objective(beta, margins, signs, c)
        best = trial.argmin(dim=0)
        improves = trial.gather(0, best.unsqueeze(0)).squeeze(0) < current
        step = torch.where(improves, steps[best], torch.zeros_like(current))
        beta = beta - step.unsqueeze(-1) * delta
        if float((step.unsqueeze(-1) * delta).abs().max()) < 1e-12:
            break
    return beta


def ovr_decision(support: Tensor, beta: Tensor, queries: Tensor) -> Tensor:
    """Decision values ``[E, q, C]`` of queries ``[E, q, d]`` (``w~_k . [x, 1]``)."""
    x = torch.cat([support.double(), support.new_ones(*support.shape[:-1], 1).double()], -1)
    q = torch.cat([queries.double(), queries.new_ones(*queries.shape[:-1], 1).double()], -1)
    kernel = q @ x.transpose(-1, -2)  # [E, q, n]
    return kernel @ beta.transpose(-1, -2)


def ovr_weights(support: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """Explicit ``(coef[E, C, d], intercept[E, C])`` (scikit-learn's ``coef_``, ``intercept_``)."""
    x = torch.cat([support.double(), support.new_ones(*support.shape[:-1], 1).double()], -1)
    w = beta @ x  # [E, C, d + 1]
    return w[..., :-1], w[..., -1]
