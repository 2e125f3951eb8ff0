"""Multinomial logistic regression fitted with full-batch L-BFGS, batched over problems.

Convention: for each problem the objective is the *mean* cross-entropy plus an L2
penalty on the weights (the bias is not penalised)::

    loss(W, b) = mean_i CE(x_i W + b, y_i) + l2 / 2 * ||W||^2

scikit-learn's ``LogisticRegression`` minimises ``C * sum_i CE + 1/2 ||W||^2``,
which has the same minimiser when ``C = 1 / (n * l2)`` (``n`` training rows).

Shapes: features ``x[e, n, d]`` and labels ``y[e, n]`` hold ``e`` independent
problems of the same size (a single problem may be given as ``x[n, d]``);
weights are ``W[e, d, c]`` and biases ``b[e, c]``. The problems are fitted together
by minimising the sum of their objectives, which has the same minimisers since
the problems share no parameters. Gradients are computed in closed form
(``x^T (softmax - onehot) / n + l2 W``), without autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.errors import ConfigError


@dataclass
class LogisticModel:
    """Fitted weights of one or a batch of multinomial logistic regressions.

    Attributes:
        weight: ``[d, c]`` or ``[e, d, c]``.
        bias: ``[c]`` or ``[e, c]``.
    """

    weight: Tensor
    bias: Tensor

    def logits(self, x: Tensor) -> Tensor:
        """Class scores ``x W + b`` for ``x[n, d]`` (or ``x[e, n, d]`` for a batch)."""
        return x @ self.weight + self.bias.unsqueeze(-2)

    def predict(self, x: Tensor) -> Tensor:
        """Predicted class index per row."""
        return self.logits(x).argmax(dim=-1)


def fit_logistic(
    x: Tensor,
    y: Tensor,
    num_classes: int,
    l2: float,
    *,
    init: LogisticModel | None = None,
    max_iter: int = 100,
    tolerance: float = 1e-4,
    history_size: int = 10,
) -> LogisticModel:
    """Fit multinomial logistic regression(s) with full-batch L-BFGS (strong-Wolfe line search).

    Args:
        x: Features ``[n, d]`` or ``[e, n, d]`` (float32; use standardised features).
        y: Integer labels ``[n]`` or ``[e, n]`` in ``[0, num_classes)``.
        num_classes: Number of classes ``c``.
        l2: Weight of the L2 penalty ``l2 / 2 * ||W||^2`` added to the mean loss.
        init: A previous solution to start from (warm start); zeros when omitted.
        max_iter: Most L-BFGS iterations.
        tolerance: Stop when the largest absolute gradient entry is below this.
        history_size: L-BFGS memory (number of curvature pairs kept).

    Returns:
        The fitted model, shaped like the input (batched or not).

    Example:
        >>> x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
        >>> model = fit_logistic(x, torch.tensor([0, 0, 1, 1]), num_classes=2, l2=1e-2)
        >>> model.predict(x).tolist()
        [0, 0, 1, 1]
    """
    if l2 < 0:
        raise ConfigError(f"l2 must be >= 0, got {l2}")
    single = x.dim() == 2
    xb = x.unsqueeze(0) if single else x
    yb = y.unsqueeze(0) if single else y
    if xb.dim() != 3 or yb.shape != xb.shape[:2]:
        raise ConfigError(f"features {tuple(x.shape)} and labels {tuple(y.shape)} do not match")
    e, n, d = xb.shape
    onehot = F.one_hot(yb.long(), num_classes).to(xb.dtype)
    xt = xb.transpose(1, 2).contiguous()
    weight = torch.zeros(e, d, num_classes, dtype=xb.dtype, device=xb.device)
    bias = torch.zeros(e, num_classes, dtype=xb.dtype, device=xb.device)
    if init is not None:
        weight.copy_(init.weight.view_as(weight))
        bias.copy_(init.bias.view_as(bias))
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tolerance,
        tolerance_change=1e-9,
        history_size=history_size,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        with torch.no_grad():
            log_probs = torch.baddbmm(bias.unsqueeze(1), xb, weight).log_softmax(dim=-1)
            loss = -(log_probs * onehot).sum() / n + 0.5 * l2 * weight.square().sum()
            residual = (log_probs.exp() - onehot) / n
            weight.grad = torch.bmm(xt, residual).add_(weight, alpha=l2)
            bias.grad = residual.sum(dim=1)
        return loss

    optimizer.step(closure)
    weight, bias = weight.detach(), bias.detach()
    if single:
        weight, bias = weight[0], bias[0]
    return LogisticModel(weight, bias)


METRICS = ("top1", "mean_per_class")


def check_metric(metric: str) -> None:
    """Raise :class:`ConfigError` unless ``metric`` is one of :data:`METRICS`."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")


def accuracy(predictions: Tensor, labels: Tensor, metric: str = "top1") -> float:
    """Top-1 accuracy, or the mean over classes of per-class recall (``"mean_per_class"``).

    Classes absent from ``labels`` are not counted in the mean per-class accuracy.
    """
    check_metric(metric)
    correct = (predictions == labels).float()
    if metric == "top1":
        return float(correct.mean())
    classes, inverse = labels.unique(return_inverse=True)
    hits = torch.zeros(len(classes), device=labels.device).index_add_(0, inverse, correct)
    counts = torch.bincount(inverse, minlength=len(classes)).float()
    return float((hits / counts).mean())
