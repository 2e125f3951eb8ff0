"""Multinomial logistic regression fitted with full-batch L-BFGS, batched over problems.

Convention: for each problem the objective is the *mean* cross-entropy plus an L2
penalty on the weights (the bias is not penalised)::

    loss(W, b) = mean_i CE(x_i W + b, y_i) + l2 / 2 * ||W||^2

(``penalize_bias=True`` adds ``l2 / 2 * ||b||^2``: then ``l2 = 2 w / n`` is AugSelf's
``sum_i CE + w (||W||^2 + ||b||^2)`` divided by ``n``.)
scikit-learn's ``LogisticRegression`` minimises ``C * sum_i CE + 1/2 ||W||^2``,
which has the same minimiser when ``C = 1 / (n * l2)`` (``n`` training rows).

Shapes: features ``x[e, n, d]`` and labels ``y[e, n]`` hold ``e`` independent
problems of the same size (a single problem may be given as ``x[n, d]``);
weights are ``W[e, c, d]`` (as in ``nn.Linear`` and scikit-learn's ``coef_``) and
biases ``b[e, c]``. The problems are fitted together
by minimising the sum of their objectives, which has the same minimisers since
the problems share no parameters. Gradients are computed in closed form
(``(softmax - onehot)^T x / n + l2 W``), without autograd, in a class-first layout
(``W[c, d] @ x^T[d, n]``, logits ``[c, n]``), markedly faster on CPU than ``x @ W^T``
when there are few classes.
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
        weight: ``[c, d]`` or ``[e, c, d]``.
        bias: ``[c]`` or ``[e, c]``.
    """

    weight: Tensor
    bias: Tensor

    def logits(self, x: Tensor) -> Tensor:
        """Class scores ``x W^T + b`` for ``x[n, d]`` (or ``x[e, n, d]`` for a batch)."""
        return x @ self.weight.transpose(-1, -2) + self.bias.unsqueeze(-2)

    def predict(self, x: Tensor) -> Tensor:
        """Predicted class index per row."""
        return self.logits(x).argmax(dim=-1)


class LogisticSolver:
    """Fits multinomial logistic regression(s) for a sequence of L2 weights (a path).

    Each :meth:`fit` starts from the previous solution, and also keeps L-BFGS's
    curvature memory: the stored gradient differences are corrected exactly for the
    change of L2 weight (``y += (l2_new - l2_old) * s`` on the weights, since the
    penalty is quadratic), which saves about a third of the function evaluations
    of a warm-started sweep.

    Args:
        x: Features ``[n, d]`` or ``[e, n, d]`` (float32; use standardised features).
        y: Integer labels ``[n]`` or ``[e, n]`` in ``[0, num_classes)``.
        num_classes: Number of classes ``c``.
        init: A solution to start from; zeros when omitted.
        max_iter: Most L-BFGS iterations per fit.
        tolerance: Stop when the largest absolute gradient entry is below this.
        history_size: L-BFGS memory (number of curvature pairs kept).
        penalize_bias: Add ``l2 / 2 * ||b||^2`` too (AugSelf's protocol penalises the bias).
        tolerance_change: L-BFGS's ``tolerance_change`` (0 never stops on small changes).
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        num_classes: int,
        *,
        init: LogisticModel | None = None,
        max_iter: int = 100,
        tolerance: float = 1e-4,
        history_size: int = 10,
        penalize_bias: bool = False,
        tolerance_change: float = 1e-9,
    ) -> None:
        self.single = x.dim() == 2
        self.penalize_bias = penalize_bias
        self.tolerance_change = tolerance_change
        xb = x.unsqueeze(0) if self.single else x
        yb = y.unsqueeze(0) if self.single else y
        if xb.dim() != 3 or yb.shape != xb.shape[:2]:
            raise ConfigError(f"features {tuple(x.shape)} and labels {tuple(y.shape)} do not match")
        e, self.n, d = xb.shape
        self.x = xb
        self.onehot = F.one_hot(yb.long(), num_classes).to(xb.dtype).transpose(1, 2).contiguous()
        self.weight = torch.zeros(e, num_classes, d, dtype=xb.dtype, device=xb.device)
        self.bias = torch.zeros(e, num_classes, 1, dtype=xb.dtype, device=xb.device)
        if init is not None:
            self.weight.copy_(init.weight.view_as(self.weight))
            self.bias.copy_(init.bias.view_as(self.bias))
        self.weight.requires_grad_(True)
        self.bias.requires_grad_(True)
        self.options = {"max_iter": max_iter, "tolerance_grad": tolerance,
                        "history_size": history_size}
        self.optimizer: torch.optim.LBFGS | None = None
        self.l2: float | None = None

    def fit(self, l2: float) -> LogisticModel:
        """Minimise ``mean CE + l2 / 2 ||W||^2`` from the current solution; returns a copy."""
        if l2 < 0:
            raise ConfigError(f"l2 must be >= 0, got {l2}")
        if self.optimizer is None or self.l2 is None or not self._retarget(l2 - self.l2):
            self.optimizer = torch.optim.LBFGS(
                [self.weight, self.bias], lr=1.0, tolerance_change=self.tolerance_change,
                line_search_fn="strong_wolfe", **self.options,
            )
        self.l2 = l2
        self.optimizer.step(lambda: self._closure(l2))
        weight, bias = self.weight.detach().clone(), self.bias.detach().squeeze(-1).clone()
        if self.single:
            weight, bias = weight[0], bias[0]
        return LogisticModel(weight, bias)

    def _closure(self, l2: float) -> Tensor:
        with torch.no_grad():
            weight, onehot = self.weight, self.onehot
            logits = torch.baddbmm(self.bias, weight, self.x.transpose(1, 2))  # [e, c, n]
            log_probs = logits.log_softmax(dim=1)
            loss = -(log_probs * onehot).sum() / self.n + 0.5 * l2 * weight.square().sum()
            residual = (log_probs.exp() - onehot) / self.n
            weight.grad = torch.bmm(residual, self.x).add_(weight, alpha=l2)
            self.bias.grad = residual.sum(dim=2, keepdim=True)
            if self.penalize_bias:
                loss = loss + 0.5 * l2 * self.bias.square().sum()
                self.bias.grad.add_(self.bias, alpha=l2)
        return loss

    def _retarget(self, delta: float) -> bool:
        """Correct the L-BFGS memory for an L2 change; False when it cannot be reused."""
        assert self.optimizer is not None
        state = self.optimizer.state[self.weight]
        keys = ("old_dirs", "old_stps", "ro", "H_diag", "d", "t", "prev_flat_grad")
        if any(state.get(key) is None for key in keys):
            return False
        # the weights come first in the flat parameter vector; the bias follows
        k = self.weight.numel() + (self.bias.numel() if self.penalize_bias else 0)
        pairs = []
        for y, s in zip(state["old_dirs"], state["old_stps"], strict=True):
            y[:k].add_(s[:k], alpha=delta)
            if float(y.dot(s)) > 1e-10:
                pairs.append((y, s))
        if not pairs:
            return False
        state["old_dirs"], state["old_stps"] = [y for y, _ in pairs], [s for _, s in pairs]
        state["ro"] = [1.0 / float(y.dot(s)) for y, s in pairs]
        y, s = pairs[-1]
        state["H_diag"] = y.dot(s) / y.dot(y)
        current = [self.weight.detach().flatten()]
        if self.penalize_bias:
            current.append(self.bias.detach().flatten())
        previous = torch.cat(current) - state["d"][:k] * state["t"]
        state["prev_flat_grad"][:k].add_(previous, alpha=delta)
        return True


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
    penalize_bias: bool = False,
    tolerance_change: float = 1e-9,
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
        penalize_bias: Penalise the bias too (``l2 / 2 * ||b||^2``).
        tolerance_change: L-BFGS's ``tolerance_change``.

    Returns:
        The fitted model, shaped like the input (batched or not).

    Example:
        >>> x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
        >>> model = fit_logistic(x, torch.tensor([0, 0, 1, 1]), num_classes=2, l2=1e-2)
        >>> model.predict(x).tolist()
        [0, 0, 1, 1]
    """
    solver = LogisticSolver(x, y, num_classes, init=init, max_iter=max_iter, tolerance=tolerance,
                            history_size=history_size, penalize_bias=penalize_bias,
                            tolerance_change=tolerance_change)
    return solver.fit(l2)


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
