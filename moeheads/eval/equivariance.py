"""How much augmentation (or other factor) information frozen features keep.

A linear ridge regression predicts each target from the features; the score is the
coefficient of determination ``R^2 = 1 - SSE / SST`` on held-out rows (``SST`` about
the held-out mean; ``nan`` for a constant target). Rows are split into fit and
held-out parts (seeded); the fit part is split again to choose the ridge weight
per target from a small grid (relative to ``n``, on standardised features), then
the regression is refitted on the whole fit part in closed form
(``W = V diag(1 / (s + alpha n)) V^T X^T Y`` from one eigendecomposition of ``X^T X``).

- :func:`view_param_r2`: the 11 view parameters of each view (absolute), and the
  difference between two views' parameters from both views' features.
- :func:`factor_r2`: any named factors, e.g. synthetic ground truth (hue, position,
  scale; pass an angle as its sine and cosine).
- :func:`class_probe_accuracy`: held-out accuracy of a linear class probe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from moeheads.errors import DataError
from moeheads.eval.linear import l2_grid, linear_probe, split_validation, standardize

#: Names of the 11 view parameters, in the order of STAR's parameter vector.
VIEW_PARAM_NAMES = (
    "crop_top", "crop_left", "crop_height", "crop_width", "flip",
    "brightness", "contrast", "saturation", "hue", "grayscale", "blur_sigma",
)
#: Ridge weights tried (times the number of fit rows, on standardised features).
RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


@dataclass
class EquivarianceResult:
    """Held-out R^2 per view parameter.

    Attributes:
        absolute: Parameter name -> R^2 of predicting a view's parameter from its features.
        difference: Parameter name -> R^2 of predicting ``a_2 - a_1`` from both views'
            features (concatenated); empty with a single view.
    """

    absolute: dict[str, float]
    difference: dict[str, float]


def _solve(x: Tensor, y: Tensor, alphas: Tensor) -> Tensor:
    """Ridge solutions ``[A, d, P]`` for every alpha (``x`` standardised, ``y`` centred)."""
    values, vectors = torch.linalg.eigh(x.T @ x)
    projected = vectors.T @ (x.T @ y)  # [d, P]
    scale = 1.0 / (values[None, :, None] + alphas[:, None, None] * len(x))  # [A, d, 1]
    return vectors @ (scale * projected)


def ridge_predict(
    x_fit: Tensor, y_fit: Tensor, x_test: Tensor, alphas: Sequence[float] = RIDGE_ALPHAS,
    val_fraction: float = 0.25, seed: int = 0,
) -> Tensor:
    """Held-out predictions ``[m, P]`` of a ridge regression with per-target chosen alpha."""
    x_fit, y_fit = x_fit.double(), y_fit.double()
    alpha_t = torch.tensor(alphas, dtype=torch.float64, device=x_fit.device)
    train, val = (i.to(x_fit.device) for i in split_validation(len(x_fit), val_fraction, seed))
    xs_train, xs_val = standardize(x_fit[train], x_fit[val])
    y_mean = y_fit[train].mean(dim=0)
    weights = _solve(xs_train, y_fit[train] - y_mean, alpha_t)  # [A, d, P]
    val_error = ((xs_val @ weights + y_mean - y_fit[val]) ** 2).sum(dim=1)  # [A, P]
    best = val_error.argmin(dim=0)  # [P]
    xs_fit, xs_test = standardize(x_fit, x_test.double())
    y_mean = y_fit.mean(dim=0)
    refit = _solve(xs_fit, y_fit - y_mean, alpha_t)
    chosen = refit[best, :, torch.arange(y_fit.shape[1], device=best.device)]  # [P, d]
    return xs_test @ chosen.T + y_mean


def r2_score(predictions: Tensor, targets: Tensor, pooled: bool = False) -> Tensor:
    """``1 - SSE / SST`` per column ``[P]`` (or one value over all columns when ``pooled``)."""
    sse = ((predictions - targets) ** 2).sum(dim=0)
    sst = ((targets - targets.mean(dim=0)) ** 2).sum(dim=0)
    if pooled:
        sse, sst = sse.sum(), sst.sum()
    return torch.where(sst > 1e-12, 1 - sse / sst.clamp_min(1e-12), torch.nan).float()


def _held_out_r2(
    features: Tensor, targets: Tensor, test_fraction: float, seed: int, pooled: bool = False,
    groups: int = 1,
) -> Tensor:
    """Split rows (or groups of ``groups`` consecutive-by-view rows), fit, score."""
    if features.dim() != 2 or targets.dim() != 2 or len(features) != len(targets):
        raise DataError(f"features {tuple(features.shape)} and targets {tuple(targets.shape)} "
                        "must be [n, d] and [n, P] with the same n")
    fit, test = split_validation(len(features) // groups, test_fraction, seed)
    if groups > 1:  # rows are view-major: row v * n + i is view v of image i
        n = len(features) // groups
        offsets = n * torch.arange(groups)[:, None]
        fit, test = ((idx[None] + offsets).flatten() for idx in (fit, test))
    fit, test = fit.to(features.device), test.to(features.device)
    predictions = ridge_predict(features[fit], targets[fit], features[test], seed=seed)
    return r2_score(predictions, targets[test].double(), pooled)


def factor_r2(
    features: Tensor, factors: Mapping[str, Tensor], *, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, float]:
    """Held-out R^2 of a ridge regression from ``features[n, d]`` to each factor.

    Args:
        features: ``[n, d]`` frozen features.
        factors: Name -> ``[n]`` or ``[n, k]`` values; a multi-column factor gets one
            pooled score ``1 - sum SSE / sum SST``.
        test_fraction: Share of rows held out for scoring.
        seed: Seed of the splits.

    Example:
        >>> x = torch.randn(500, 8)
        >>> factor_r2(x, {"linear": x @ torch.randn(8)})["linear"] > 0.99
        True
    """
    return {
        name: float(_held_out_r2(features, values.reshape(len(values), -1), test_fraction, seed,
                                 pooled=True))
        for name, values in factors.items()
    }


def view_param_r2(
    features: Tensor,
    params: Tensor,
    *,
    names: Sequence[str] = VIEW_PARAM_NAMES,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> EquivarianceResult:
    """R^2 of each view parameter from features, and of the two views' parameter difference.

    Held-out rows are whole images (all views of an image are on the same side).

    Args:
        features: ``[V, n, d]`` features of ``V`` views of ``n`` images.
        params: ``[V, n, P]`` the views' parameters (``Views.params``).
        names: ``P`` parameter names (STAR's 11 by default).
        test_fraction: Share of images held out.
        seed: Seed of the splits.
    """
    if features.dim() != 3 or params.dim() != 3 or features.shape[:2] != params.shape[:2]:
        raise DataError(f"features {tuple(features.shape)} and params {tuple(params.shape)} must "
                        "be [V, n, d] and [V, n, P] with the same V and n")
    if len(names) != params.shape[-1]:
        raise DataError(f"{len(names)} parameter names for {params.shape[-1]} parameters")
    views = features.shape[0]
    absolute = _held_out_r2(features.flatten(0, 1), params.flatten(0, 1).float(), test_fraction,
                            seed, groups=views)
    difference: dict[str, float] = {}
    if views >= 2:
        both = torch.cat([features[0], features[1]], dim=1)
        diff = _held_out_r2(both, (params[1] - params[0]).float(), test_fraction, seed)
        difference = dict(zip(names, diff.tolist(), strict=True))
    return EquivarianceResult(dict(zip(names, absolute.tolist(), strict=True)), difference)


def class_probe_accuracy(
    features: Tensor, labels: Tensor, *, test_fraction: float = 0.2, seed: int = 0
) -> float:
    """Held-out top-1 accuracy of a linear probe (L2 weight chosen on a validation split)."""
    fit, test = split_validation(len(labels), test_fraction, seed)
    fit, test = fit.to(features.device), test.to(features.device)
    result = linear_probe(features[fit], labels[fit], features[test], labels[test],
                          grid=l2_grid(12), seed=seed)
    return result.test_accuracy
