"""Logistic regression solver and the linear probe sweep."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from moeheads.errors import ConfigError, DataError
from moeheads.eval.linear import l2_grid, linear_probe, split_validation
from moeheads.eval.logistic import LogisticSolver, accuracy, fit_logistic


def _problem(n: int = 300, d: int = 6, c: int = 3, noise: float = 0.5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, c, generator=g) * 2
    y = (x @ w + noise * torch.randn(n, c, generator=g)).argmax(dim=1)
    return x, y, w


def test_matches_scikit_learn_at_the_same_regularisation() -> None:
    # Ours: mean CE + l2/2 ||W||^2; scikit-learn: C * sum CE + 1/2 ||W||^2, so C = 1 / (n l2).
    # Tolerance: probabilities within 1e-4 and weights within 1e-3 (both solved to 1e-10).
    x, y, _ = _problem()
    x = x.double()
    l2 = 0.05
    ours = fit_logistic(x, y, 3, l2, max_iter=500, tolerance=1e-10)
    ref = LogisticRegression(C=1 / (len(y) * l2), tol=1e-10, max_iter=2000)
    ref.fit(x.numpy(), y.numpy())
    probs = ours.logits(x).softmax(dim=1).numpy()
    np.testing.assert_allclose(probs, ref.predict_proba(x.numpy()), atol=1e-4)
    np.testing.assert_allclose(ours.weight.numpy(), ref.coef_, atol=1e-3)
    # The unpenalised bias is defined up to a constant shared by the classes.
    bias = ours.bias.numpy()
    ref_bias = ref.intercept_
    np.testing.assert_allclose(bias - bias.mean(), ref_bias - ref_bias.mean(), atol=1e-3)


def test_batched_fit_equals_separate_fits() -> None:
    problems = [_problem(n=40, seed=s) for s in range(3)]
    x = torch.stack([p[0] for p in problems]).double()
    y = torch.stack([p[1] for p in problems])
    batched = fit_logistic(x, y, 3, 0.1, max_iter=300, tolerance=1e-9)
    for i in range(3):
        alone = fit_logistic(x[i], y[i], 3, 0.1, max_iter=300, tolerance=1e-9)
        torch.testing.assert_close(batched.weight[i], alone.weight, atol=1e-4, rtol=0)


def test_warm_start_keeps_the_solution() -> None:
    x, y, _ = _problem()
    first = fit_logistic(x, y, 3, 0.1, max_iter=200, tolerance=1e-6)
    again = fit_logistic(x, y, 3, 0.1, init=first, max_iter=200, tolerance=1e-6)
    torch.testing.assert_close(again.weight, first.weight, atol=1e-4, rtol=0)


def test_probe_recovers_a_known_classifier() -> None:
    x, y, _ = _problem(n=1200, d=10, c=4, noise=0.0, seed=1)
    result = linear_probe(x[:900], y[:900], x[900:], y[900:])
    assert result.test_accuracy > 0.95
    assert len(result.val_curve) == 45
    assert result.val_curve[0][0] == pytest.approx(1e5)
    assert result.val_curve[-1][0] == pytest.approx(1e-6)
    assert result.val_accuracy == max(acc for _, acc in result.val_curve)
    # Strong regularisation is worse than the chosen weight on separable data.
    assert result.val_curve[0][1] < result.val_accuracy


def test_probe_with_explicit_validation_split_and_mean_per_class() -> None:
    x, y, _ = _problem(n=600, noise=0.0, seed=2)
    result = linear_probe(x[:300], y[:300], x[450:], y[450:], x[300:450], y[300:450],
                          metric="mean_per_class", grid=l2_grid(5, 1e-4, 1.0))
    assert result.metric == "mean_per_class" and result.test_accuracy > 0.9


def test_accuracy_metrics_by_hand() -> None:
    labels = torch.tensor([0, 0, 0, 1])
    predictions = torch.tensor([0, 0, 0, 0])
    assert accuracy(predictions, labels) == 0.75
    assert accuracy(predictions, labels, "mean_per_class") == 0.5  # (3/3 + 0/1) / 2


def test_grid_and_split() -> None:
    grid = l2_grid()
    assert len(grid) == 45 and grid[0] == pytest.approx(1e-6) and grid[-1] == pytest.approx(1e5)
    train, val = split_validation(10, 0.2, seed=0)
    assert len(val) == 2 and sorted(torch.cat([train, val]).tolist()) == list(range(10))


def test_user_errors() -> None:
    x, y, _ = _problem(n=50)
    with pytest.raises(ConfigError, match="metric"):
        linear_probe(x, y, x, y, metric="top5")
    with pytest.raises(DataError, match="width"):
        linear_probe(x, y, x[:, :3], y)
    with pytest.raises(ConfigError, match="both"):
        linear_probe(x, y, x, y, val_features=x)
    with pytest.raises(ConfigError):
        fit_logistic(x, y, 3, l2=-1.0)


def test_solver_path_reuses_curvature_and_matches_fresh_fits() -> None:
    # Carrying the L-BFGS memory across L2 weights must not change the solutions.
    x, y, _ = _problem(n=400, d=12, c=4, noise=1.0, seed=5)
    solver = LogisticSolver(x.double(), y, 4, max_iter=300, tolerance=1e-9)
    for l2 in (10.0, 1.0, 0.1, 0.01):
        along_path = solver.fit(l2)
        fresh = fit_logistic(x.double(), y, 4, l2, max_iter=300, tolerance=1e-9)
        torch.testing.assert_close(along_path.weight, fresh.weight, atol=1e-4, rtol=0)
