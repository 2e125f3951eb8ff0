"""Student-t intervals against values derived by hand from printed t tables."""

from __future__ import annotations

import math

import pytest

from moeheads.numerics.intervals import mean_interval, t_cdf, t_quantile


@pytest.mark.parametrize(("df", "expected"), [
    (1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (29, 2.045), (1000, 1.962),
])
def test_t_quantile_matches_the_printed_table(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_t_cdf_closed_forms() -> None:
    # df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/pi.
    assert t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)
    # df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)); at t = 2: 1/2 + 2/(2 sqrt 6) = 0.908248...
    assert t_cdf(2.0, 2) == pytest.approx(0.5 + 1 / math.sqrt(6), abs=1e-12)
    assert t_cdf(-2.0, 2) == pytest.approx(0.5 - 1 / math.sqrt(6), abs=1e-12)
    assert t_quantile(0.025, 2) == pytest.approx(-4.303, abs=1e-3)


def test_three_seeds_interval_by_hand() -> None:
    # values 0.80, 0.82, 0.84: mean 0.82, s = sqrt((0.02^2 + 0 + 0.02^2) / 2) = 0.02,
    # half width = t_{0.975,2} * s / sqrt(3) = 4.3027 * 0.02 / 1.7321 = 0.049683.
    interval = mean_interval([0.80, 0.82, 0.84])
    assert interval.mean == pytest.approx(0.82)
    assert interval.half_width == pytest.approx(0.049683, abs=1e-6)
    assert interval.n == 3 and interval.low == pytest.approx(0.82 - 0.049683, abs=1e-6)


def test_two_seeds_and_other_levels() -> None:
    # values 1 and 3: mean 2, s = sqrt(2), half width = 12.706 * sqrt(2) / sqrt(2) = 12.706.
    assert mean_interval([1.0, 3.0]).half_width == pytest.approx(12.706, abs=1e-3)
    # 90%: t_{0.95,2} = 2.920; values 1, 2, 3 (s = 1): 2.920 / sqrt(3) = 1.6858.
    assert mean_interval([1.0, 2.0, 3.0], level=0.90).half_width == pytest.approx(1.6858,
                                                                                  abs=1e-3)


def test_one_value_has_no_interval_and_nothing_is_an_error() -> None:
    single = mean_interval([0.5, float("nan")])
    assert single.mean == 0.5 and math.isnan(single.half_width) and single.n == 1
    with pytest.raises(ValueError, match="no finite value"):
        mean_interval([])
    with pytest.raises(ValueError, match="p must lie"):
        t_quantile(1.0, 3)
