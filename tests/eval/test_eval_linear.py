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
    result = linear_probe(x[:900], y[:900], x[900:], y[900:], variant="fast")
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


def test_paper_objective_matches_scikit_learn_with_a_penalised_intercept() -> None:
    # AugSelf: sum CE + w (||W||^2 + ||b||^2). Ours: l2 = 2 w / n on the mean loss with the
    # bias penalised. scikit-learn: C = 1 / (2 w) on [x, 1] without a separate intercept.
    x, y, _ = _problem()
    x = x.double()
    w = 0.5
    ours = fit_logistic(x, y, 3, 2 * w / len(y), max_iter=500, tolerance=1e-12,
                        penalize_bias=True)
    ones = np.hstack([x.numpy(), np.ones((len(y), 1))])
    ref = LogisticRegression(C=1 / (2 * w), fit_intercept=False, tol=1e-12, max_iter=5000)
    ref.fit(ones, y.numpy())
    np.testing.assert_allclose(ours.weight.numpy(), ref.coef_[:, :-1], atol=1e-4)
    np.testing.assert_allclose(ours.bias.numpy(), ref.coef_[:, -1], atol=1e-4)


def _augself_reference(x, y, xv, yv, xt, yt, grid, max_iter):
    """AugSelf's sweep written plainly: one nn.Linear, a fresh L-BFGS per weight, weak to
    strong, the best model refitted on train + val (float64 here)."""
    torch.manual_seed(0)
    classifier = torch.nn.Linear(x.shape[1], 3).double()
    torch.nn.init.zeros_(classifier.weight)
    torch.nn.init.zeros_(classifier.bias)
    options = {"line_search_fn": "strong_wolfe", "max_iter": max_iter, "lr": 1.0,
               "tolerance_grad": 1e-10, "tolerance_change": 0}

    def fit(model, xs, ys, w):
        optimizer = torch.optim.LBFGS(model.parameters(), **options)

        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xs), ys, reduction="sum")
            loss = loss + w * sum(p.pow(2).sum() for p in model.parameters())
            loss.backward()
            return loss

        optimizer.step(closure)

    best = (-1.0, None, None)
    for w in sorted(grid):
        fit(classifier, x, y, w)
        with torch.no_grad():
            acc = float((classifier(xv).argmax(1) == yv).double().mean())
        if acc > best[0]:
            best = (acc, w, {k: v.clone() for k, v in classifier.state_dict().items()})
    classifier.load_state_dict(best[2])
    fit(classifier, torch.cat([x, xv]), torch.cat([y, yv]), best[1])
    with torch.no_grad():
        return best[1], float((classifier(xt).argmax(1) == yt).double().mean())


def test_paper_protocol_equals_augself_sweep() -> None:
    x, y, _ = _problem(n=420, d=8, noise=1.0, seed=3)
    x = x.double()
    splits = (x[:240], y[:240], x[240:300], y[240:300], x[300:], y[300:])
    grid = l2_grid(6, 1e-2, 1e3)
    result = linear_probe(splits[0], splits[1], splits[4], splits[5], splits[2], splits[3],
                          grid=grid, max_iter=300)
    assert [w for w, _ in result.val_curve] == sorted(grid)  # weak to strong
    best_w, test_acc = _augself_reference(*splits, grid, max_iter=300)
    assert result.l2 == pytest.approx(best_w)
    assert result.test_accuracy == pytest.approx(test_acc, abs=1 / 120)


def test_paper_split_is_augselfs_random_split() -> None:
    from torch.utils.data import random_split

    from moeheads.eval.paper_splits import PAPER_SPLITS, paper_split

    train, val, seed = PAPER_SPLITS["cifar10"]
    ours_train, ours_val = paper_split("cifar10", train + val)
    theirs = random_split(range(train + val), [train, val],
                          generator=torch.Generator().manual_seed(seed))
    assert ours_train.tolist() == list(theirs[0].indices)
    assert ours_val.tolist() == list(theirs[1].indices)
    small_train, small_val = paper_split("pets", 368)  # a subset keeps the share (740 / 3680)
    assert len(small_val) == 74 and len(small_train) == 294
    with pytest.raises(DataError):
        paper_split("dtd", 100)
