"""Ridge-regression R^2 of view parameters and factors."""

import math

import pytest
import torch

from moeheads.errors import DataError
from moeheads.eval.equivariance import (
    VIEW_PARAM_NAMES,
    class_probe_accuracy,
    factor_r2,
    r2_score,
    view_param_r2,
)


def test_linear_factor_is_recovered_and_noise_is_not() -> None:
    x = torch.randn(1000, 16)
    scores = factor_r2(x, {"linear": x @ torch.randn(16, 2), "noise": torch.randn(1000)})
    assert scores["linear"] > 0.999
    assert abs(scores["noise"]) < 0.05


def test_view_parameters_and_their_difference() -> None:
    features = torch.randn(2, 800, 12)
    params = torch.randn(2, 800, 11)
    params[..., 0] = features[..., 0] - 2 * features[..., 3]  # crop_top is linear in the features
    params[..., 4] = 1.0  # a constant parameter has no R^2
    result = view_param_r2(features, params)
    assert list(result.absolute) == list(VIEW_PARAM_NAMES)
    assert result.absolute["crop_top"] > 0.999 and abs(result.absolute["hue"]) < 0.05
    assert math.isnan(result.absolute["flip"])
    assert result.difference["crop_top"] > 0.999 and abs(result.difference["hue"]) < 0.05


def test_r2_by_hand() -> None:
    targets = torch.tensor([[1.0], [2.0], [3.0]])
    # SSE = 0.25 * 2, SST = 2 -> R^2 = 0.75
    assert r2_score(torch.tensor([[1.5], [2.0], [2.5]]), targets).item() == pytest.approx(0.75)


def test_class_probe() -> None:
    x = torch.randn(600, 8)
    assert class_probe_accuracy(x, (x[:, 2] > 0).long()) > 0.95


def test_shape_errors() -> None:
    with pytest.raises(DataError):
        view_param_r2(torch.randn(2, 10, 4), torch.randn(2, 9, 11))
    with pytest.raises(DataError, match="names"):
        view_param_r2(torch.randn(2, 10, 4), torch.randn(2, 10, 3))
