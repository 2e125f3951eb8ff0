"""Confidence intervals of a mean over a few seeds (Student t), without SciPy.

The two-sided interval of level ``1 - alpha`` around the mean of ``n`` values is
``mean +- t_{1 - alpha/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation
(``n - 1`` in the denominator). With 3 seeds and 95%: ``t_{0.975, 2} = 4.303``.

Example:
    >>> round(t_quantile(0.975, 2), 3)
    4.303
    >>> interval = mean_interval([1.0, 2.0, 3.0])
    >>> interval.mean, round(interval.half_width, 3)
    (2.0, 2.484)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MeanInterval", "mean_interval", "t_cdf", "t_quantile"]


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)`` for ``0 <= x <= 1``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on
    :func:`t_cdf`, to about 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class MeanInterval:
    """The mean of ``n`` values and the half width of its confidence interval.

    Attributes:
        mean: The sample mean.
        half_width: ``t * s / sqrt(n)`` (``nan`` for a single value).
        n: The number of values.
        level: The confidence level (``0.95``).
    """

    mean: float
    half_width: float
    n: int
    level: float = 0.95

    @property
    def low(self) -> float:
        """``mean - half_width``."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """``mean + half_width``."""
        return self.mean + self.half_width


def mean_interval(values: Sequence[float], level: float = 0.95) -> MeanInterval:
    """Mean and Student-t confidence interval of ``values`` (non-finite values dropped).

    Raises:
        ValueError: No finite value, or a level outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        raise ValueError("no finite value to average")
    n = len(finite)
    mean = sum(finite) / n
    if n == 1:
        return MeanInterval(mean, math.nan, 1, level)
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
    return MeanInterval(mean, t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n), n, level)
