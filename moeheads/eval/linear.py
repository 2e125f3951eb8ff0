"""Linear transfer probe: logistic regression on frozen features with a swept L2 weight.

Two variants of the protocol, both sweeping 45 log-spaced L2 weights in ``[1e-6, 1e5]`` with
full-batch L-BFGS on a validation split, keeping the weight with the best validation
accuracy, refitting on train + validation and scoring the test split:

* ``paper`` (the default; AugSelf's linear evaluation, which STAR uses): raw
  features (no standardisation); the objective is the *summed* cross-entropy plus
  ``w (||W||^2 + ||b||^2)`` (the bias is penalised); the weights are swept from the
  weakest to the strongest, each fit warm-started from the previous solution; L-BFGS
  runs up to 5000 iterations with gradient tolerance 1e-10 on the summed objective
  (history 100, strong-Wolfe line search, no stop on small changes).
* ``fast`` (moeheads' earlier, faster variant): features standardised with the
  statistics of the rows being fitted; the *mean* cross-entropy plus
  ``l2 / 2 ||W||^2`` (bias free), swept from the strongest weight to the weakest,
  100 iterations at tolerance 1e-4.

How the scales relate, for ``n`` fitted rows: the paper's ``w`` is ``l2 = 2 w / n``
of the solver's mean-loss convention (:mod:`moeheads.eval.logistic`, with the bias
penalised), and scikit-learn's ``C = 1 / (2 w)`` (with the intercept as a penalised
constant feature); the fast variant's ``l2`` is scikit-learn's ``C = 1 / (n * l2)``.
The same grid value therefore means a much weaker penalty in the paper protocol
(``2 / n`` times the fast one). ``l2`` in the result is the swept grid value
(``w`` for ``paper``, ``l2`` for ``fast``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

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
        l2: The chosen L2 weight (the grid value: ``w`` for ``paper``, ``l2`` for ``fast``).
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
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor,
    val_features: Tensor | None = None, val_labels: Tensor | None = None, *,
    metric: str = "top1", variant: Literal["paper", "fast"] = "paper",
    grid: list[float] | None = None, val_fraction: float = 0.2, max_iter: int | None = None,
    tolerance: float | None = None, device: str | torch.device | None = None, seed: int = 0,
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
        variant: ``paper`` (AugSelf's protocol, see the module docstring) or ``fast``.
        grid: L2 weights to sweep; :func:`l2_grid` (45 values in [1e-6, 1e5]) by default.
        val_fraction: Share of training rows held out when no validation split is given.
        max_iter: Most L-BFGS iterations per weight (``None``: the variant's default).
        tolerance: L-BFGS gradient tolerance (``None``: the variant's; see
            :class:`ProbeSettings`).
        device: Where to fit; the features' device by default.
        seed: Seed of the validation split.

    Example:
        >>> x = torch.randn(200, 4); y = (x[:, 0] > 0).long()
        >>> result = linear_probe(x[:150], y[:150], x[150:], y[150:], grid=[1e-3, 1e-1])
        >>> result.test_accuracy > 0.9
        True
    """
    check_metric(metric)
    if variant not in ("paper", "fast"):
        raise ConfigError(f"variant must be 'paper' or 'fast', got {variant!r}")
    device = torch.device(device) if device is not None else train_features.device
    x_train, y_train, x_val, y_val, x_test, y_test = _splits(
        device, train_features, train_labels, test_features, test_labels, val_features,
        val_labels, val_fraction, seed)
    num_classes = int(max(y_train.max(), y_val.max(), y_test.max())) + 1
    settings = ProbeSettings.of(variant, max_iter, tolerance)
    weights = sorted(grid or l2_grid(), reverse=not settings.paper)
    full_x_raw, full_y = torch.cat([x_train, x_val]), torch.cat([y_train, y_val])
    fit_x, val_x = settings.inputs(x_train, x_val)
    full_x, test_x = settings.inputs(full_x_raw, x_test)
    solver = LogisticSolver(fit_x, y_train, num_classes, **settings.options(len(y_train)))
    best_value, best_val, best_model, curve = _sweep(solver, settings, weights, val_x, y_val,
                                                     metric)
    final = fit_logistic(full_x, full_y, num_classes,
                         settings.solver_l2(best_value, len(full_y)), init=best_model,
                         **settings.options(len(full_y)))
    test_acc = accuracy(final.predict(test_x), y_test, metric)
    return LinearProbeResult(best_value, curve, best_val, test_acc, metric)


@dataclass(frozen=True)
class ProbeSettings:
    """The solver settings of one protocol variant (see the module docstring).

    Attributes:
        paper: The ``paper`` variant (else ``fast``).
        max_iter: Most L-BFGS iterations per weight (default 5000 for ``paper``, 100 for
            ``fast``).
        tolerance: L-BFGS gradient tolerance, on the largest gradient entry of the summed
            objective for ``paper`` (default 1e-10) and of the mean one for ``fast``
            (default 1e-4).
    """

    paper: bool
    max_iter: int
    tolerance: float

    @classmethod
    def of(cls, variant: str, max_iter: int | None, tolerance: float | None) -> ProbeSettings:
        """The variant's defaults, with the given iterations and tolerance where set."""
        paper = variant == "paper"
        return cls(paper, max_iter if max_iter is not None else (5000 if paper else 100),
                   tolerance if tolerance is not None else (1e-10 if paper else 1e-4))

    def options(self, rows: int) -> dict[str, Any]:
        """Keyword options of the L-BFGS fit on ``rows`` rows."""
        if not self.paper:
            return {"max_iter": self.max_iter, "tolerance": self.tolerance}
        # the summed objective's gradient is n times the mean one's
        return {"max_iter": self.max_iter, "tolerance": self.tolerance / rows,
                "history_size": 100, "penalize_bias": True, "tolerance_change": 1e-9}

    def solver_l2(self, value: float, rows: int) -> float:
        """A grid value as the solver's (mean-loss) L2 weight."""
        return 2.0 * value / rows if self.paper else value

    def inputs(self, fit_rows: Tensor, other: Tensor) -> list[Tensor]:
        """The solver's inputs: raw for ``paper``, standardised on ``fit_rows`` for ``fast``."""
        return [fit_rows, other] if self.paper else standardize(fit_rows, other)


def _sweep(solver: LogisticSolver, settings: ProbeSettings, weights: list[float],
           val_x: Tensor, val_y: Tensor, metric: str,
           ) -> tuple[float, float, LogisticModel, list[tuple[float, float]]]:
    """Fit every weight in order; the best on validation (first of ties), its accuracy and
    model, and the curve."""
    curve: list[tuple[float, float]] = []
    best: tuple[float, float, LogisticModel] | None = None
    for value in weights:
        model = solver.fit(settings.solver_l2(value, solver.n))
        curve.append((value, accuracy(model.predict(val_x), val_y, metric)))
        if best is None or curve[-1][1] > best[1]:
            best = (value, curve[-1][1], model)
    if best is None:
        raise ConfigError("the L2 grid is empty")
    return (*best, curve)


def _splits(device: torch.device, train_features: Tensor, train_labels: Tensor,
            test_features: Tensor, test_labels: Tensor, val_features: Tensor | None,
            val_labels: Tensor | None, val_fraction: float, seed: int) -> tuple[Tensor, ...]:
    """``(x_train, y_train, x_val, y_val, x_test, y_test)`` on ``device``, checked; the
    validation rows held out of the training rows when none are given."""
    if (val_features is None) != (val_labels is None):
        raise ConfigError("give both val_features and val_labels, or neither")
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
    return x_train, y_train, x_val, y_val, x_test, y_test


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
