"""Linear transfer probe: logistic regression on frozen features with a swept L2 weight.

The protocol (STAR's linear transfer evaluation, as in Kornblith et al.'s "Do Better
ImageNet Models Transfer Better?"): features are standardised with the statistics
of the rows being fitted, a multinomial logistic regression is fitted with
full-batch L-BFGS for each of 45 log-spaced L2 weights in ``[1e-6, 1e5]``, from the
strongest to the weakest, each warm-started from the previous solution (and its
L-BFGS curvature memory, see :class:`~moeheads.eval.logistic.LogisticSolver`); the
weight with the best validation accuracy is kept, the model is refitted on
train + validation and scored on the test split.

The L2 weight ``l2`` multiplies ``1/2 ||W||^2`` added to the *mean* cross-entropy
(see :mod:`moeheads.eval.logistic`; scikit-learn's ``C = 1 / (n * l2)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from moeheads.errors import ConfigError, DataError
from moeheads.eval.logistic import (
    LogisticModel,
    LogisticSolver,
    accuracy,
    check_metric,
    fit_logistic,
)


@dataclass
class LinearProbeResult:
    """Outcome of :func:`linear_probe`.

    Attributes:
        l2: The chosen L2 weight.
        val_curve: ``(l2, validation accuracy)`` for every swept weight, in sweep order.
        val_accuracy: Validation accuracy at the chosen weight.
        test_accuracy: Test accuracy of the model refitted on train + validation.
        metric: ``"top1"`` or ``"mean_per_class"``.
    """

    l2: float
    val_curve: list[tuple[float, float]]
    val_accuracy: float
    test_accuracy: float
    metric: str


def l2_grid(num: int = 45, low: float = 1e-6, high: float = 1e5) -> list[float]:
    """``num`` log-spaced L2 weights from ``low`` to ``high`` (STAR's 45 values in [1e-6, 1e5])."""
    if num < 1 or not 0 < low <= high:
        raise ConfigError(f"invalid L2 grid: num={num}, low={low}, high={high}")
    if num == 1:
        return [low]
    step = (math.log10(high) - math.log10(low)) / (num - 1)
    return [10 ** (math.log10(low) + i * step) for i in range(num)]


def standardize(fit_rows: Tensor, *others: Tensor) -> list[Tensor]:
    """Standardise every tensor with the per-dimension mean and std of ``fit_rows``."""
    mean = fit_rows.mean(dim=0)
    std = fit_rows.std(dim=0).clamp_min(1e-6)
    return [(t - mean) / std for t in (fit_rows, *others)]


def split_validation(n: int, fraction: float = 0.2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A seeded random split of ``n`` row indices into (train, validation), on the CPU.

    Raises:
        ConfigError: If ``fraction`` is not in (0, 1) or a side would be empty.
    """
    num_val = round(n * fraction)
    if not 0 < fraction < 1 or not 0 < num_val < n:
        raise ConfigError(f"cannot split {n} rows with validation fraction {fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[num_val:], order[:num_val]


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    val_features: Tensor | None = None,
    val_labels: Tensor | None = None,
    *,
    metric: str = "top1",
    grid: list[float] | None = None,
    val_fraction: float = 0.2,
    max_iter: int = 100,
    tolerance: float = 1e-4,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> LinearProbeResult:
    """Sweep the L2 weight on a validation split, refit on train + val, score on test.

    Args:
        train_features: ``[n, d]`` frozen features of the training split.
        train_labels: ``[n]`` integer labels.
        test_features: ``[m, d]`` test features.
        test_labels: ``[m]`` test labels.
        val_features: Validation features; when omitted, ``val_fraction`` of the
            training rows (seeded) are held out instead.
        val_labels: Validation labels (with ``val_features``).
        metric: ``"top1"`` or ``"mean_per_class"``.
        grid: L2 weights to sweep; :func:`l2_grid` (45 values in [1e-6, 1e5]) by default.
        val_fraction: Share of training rows held out when no validation split is given.
        max_iter: Most L-BFGS iterations per weight.
        tolerance: L-BFGS gradient tolerance (largest gradient entry, mean loss).
        device: Where to fit; the features' device by default.
        seed: Seed of the validation split.

    Returns:
        The chosen weight, the validation curve and the test accuracy.

    Example:
        >>> x = torch.randn(200, 4); y = (x[:, 0] > 0).long()
        >>> result = linear_probe(x[:150], y[:150], x[150:], y[150:], grid=[1e-3, 1e-1])
        >>> result.test_accuracy > 0.9
        True
    """
    check_metric(metric)
    if (val_features is None) != (val_labels is None):
        raise ConfigError("give both val_features and val_labels, or neither")
    device = torch.device(device) if device is not None else train_features.device
    prepare = _prepare(device)
    x_train, y_train = prepare(train_features), prepare(train_labels).long()
    x_test, y_test = prepare(test_features), prepare(test_labels).long()
    if val_features is None or val_labels is None:
        split = split_validation(len(y_train), val_fraction, seed)
        train_idx, val_idx = (i.to(device) for i in split)
        x_train, x_val = x_train[train_idx], x_train[val_idx]
        y_train, y_val = y_train[train_idx], y_train[val_idx]
    else:
        x_val, y_val = prepare(val_features), prepare(val_labels).long()
    _check_features(x_train, y_train, x_val, y_val, x_test, y_test)
    num_classes = int(max(y_train.max(), y_val.max(), y_test.max())) + 1
    weights = sorted(grid or l2_grid(), reverse=True)
    solve = {"max_iter": max_iter, "tolerance": tolerance}

    fit_x, val_x = standardize(x_train, x_val)
    solver = LogisticSolver(fit_x, y_train, num_classes, **solve)
    best: tuple[float, float, LogisticModel] | None = None
    curve: list[tuple[float, float]] = []
    for l2 in weights:
        model = solver.fit(l2)
        curve.append((l2, accuracy(model.predict(val_x), y_val, metric)))
        if best is None or curve[-1][1] > best[1]:
            best = (l2, curve[-1][1], model)
    assert best is not None
    best_l2, best_val, best_model = best

    full_x, test_x = standardize(torch.cat([x_train, x_val]), x_test)
    full_y = torch.cat([y_train, y_val])
    final = fit_logistic(full_x, full_y, num_classes, best_l2, init=best_model, **solve)
    test_acc = accuracy(final.predict(test_x), y_test, metric)
    return LinearProbeResult(best_l2, curve, best_val, test_acc, metric)


def _prepare(device: torch.device) -> Callable[[Tensor], Tensor]:
    def move(t: Tensor) -> Tensor:
        t = t.to(device)
        return t.float() if t.is_floating_point() else t

    return move


def _check_features(*tensors: Tensor) -> None:
    pairs = list(zip(tensors[::2], tensors[1::2], strict=True))
    for name, (x, y) in zip(("train", "validation", "test"), pairs, strict=True):
        if x.dim() != 2 or y.shape != x.shape[:1] or len(y) == 0:
            raise DataError(f"{name} features {tuple(x.shape)} and labels {tuple(y.shape)} differ")
    dims = {x.shape[1] for x, _ in pairs}
    if len(dims) != 1:
        raise DataError(f"train, validation and test features differ in width: {sorted(dims)}")
