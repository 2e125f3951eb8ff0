"""Retrieval and prediction error of equivariant predictions: hand-derived values."""

import math

import pytest
import torch

from moeheads.eval.equivariance_measures import (
    equivariance_scores,
    prediction_error,
    retrieval,
)


def _unit(*rows: tuple[float, float]) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


QUERIES = _unit((1, 0), (0.9, 0.1), (1, 0.2))
GALLERY = _unit((1, 0), (0, 1), (1, 1))


def test_retrieval_by_hand() -> None:
    # query 0 finds its view first; query 1 (0.994, 0.110) is closer to views 0 and 2
    # than to its own (0, 1): rank 3; query 2 is closer to view 0 only: rank 2
    scores = retrieval(QUERIES, GALLERY)
    assert scores["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    assert (scores["h@1"], scores["h@5"]) == pytest.approx((1 / 3, 1.0))


def test_retrieval_queries_predictions_not_views() -> None:
    # the other way round the ranks are 1, 2, 1: swapping query and gallery shows
    assert retrieval(GALLERY, QUERIES)["mrr"] == pytest.approx((1 + 1 / 2 + 1) / 3)


def test_retrieval_is_chunk_independent() -> None:
    q, g = torch.randn(50, 6), torch.randn(50, 6)
    assert retrieval(q, g, chunk=7) == retrieval(q, g)


def test_prediction_error_by_hand() -> None:
    z, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert prediction_error(t, z, t) == 0  # a perfect prediction
    assert prediction_error(z, z, t) == 1  # predicting no change
    # halfway: ||p - t||^2 = 2 - 2 cos 45deg against ||z - t||^2 = 2
    halfway = torch.tensor([[1.0, 1.0]])
    assert prediction_error(halfway, z, t) == pytest.approx(1 - 1 / math.sqrt(2))
    # the denominator is the original's distance to the view, not the prediction's
    assert prediction_error(z, halfway, t) == pytest.approx(1 / (1 - 1 / math.sqrt(2)))


def test_a_fitted_predictor_learns_a_known_equivariant_map() -> None:
    # views move the embedding by a fixed linear map of their parameters
    g = torch.Generator().manual_seed(0)
    n, dim = 600, 8
    z = torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1)
    params = torch.randn(2, n, 3, generator=g)
    move = torch.randn(3, dim, generator=g)
    views = torch.nn.functional.normalize(z + 0.7 * params @ move, dim=-1)
    scores = equivariance_scores(z, views, params, fit_epochs=40, fit_hidden_dim=64, seed=0)
    none, fitted = scores["no change"], scores["fitted"]
    assert fitted.mrr > 0.9 > none.mrr
    assert fitted.prediction_error < 0.2 < 1 - 1e-6 < none.prediction_error + 1e-6
    exact = equivariance_scores(z, views, params, own=lambda zz, pp: torch.nn.functional.normalize(
        zz + 0.7 * pp @ move, dim=-1), fit_epochs=1, fit_hidden_dim=8)["own"]
    assert (exact.mrr, exact.hit1, exact.prediction_error) == pytest.approx((1, 1, 0), abs=1e-6)
