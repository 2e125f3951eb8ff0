"""param_difference: AugSelf-style differences between two views."""

from __future__ import annotations

import pytest
import torch

from moeheads.errors import ShapeError
from moeheads.views import param_difference


def test_difference_by_kind() -> None:
    a = torch.tensor([0.1, 0.2, 0.5, 0.6, 1.0, 1.2, 0.8, 1.0, 0.05, 0.0, 0.0])
    b = torch.tensor([0.3, 0.0, 0.4, 0.7, 0.0, 1.0, 1.0, 1.3, -0.05, 1.0, 1.5])
    expected = torch.tensor([0.2, -0.2, -0.1, 0.1, 1.0, -0.2, 0.2, 0.3, -0.1, 1.0, 1.5])
    torch.testing.assert_close(param_difference(a, b), expected)
    torch.testing.assert_close(param_difference(b, a)[[4, 9]], torch.ones(2))
    assert param_difference(a.expand(2, 3, 11), b.expand(2, 3, 11)).shape == (2, 3, 11)


def test_bad_shapes() -> None:
    with pytest.raises(ShapeError, match="param_difference"):
        param_difference(torch.zeros(2, 11), torch.zeros(3, 11))
