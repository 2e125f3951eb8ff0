"""Per-dimension standardisation of view parameters, derived from the sampler."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.views.layout import (
    BLUR_SIGMA,
    CROP,
    FLIP,
    GRAYSCALE,
    JITTER_OPS,
    NEUTRAL_JITTER,
    NUM_PARAMS,
)
from moeheads.views.sampler import ViewSampler


def _bernoulli(p: float) -> tuple[float, float]:
    return p, p * (1.0 - p)


def _uniform_or_constant(p: float, low: float, high: float, constant: float) -> tuple[float, float]:
    """Mean and variance of ``U(low, high)`` with probability p, else ``constant``."""
    mean = p * (low + high) / 2 + (1 - p) * constant
    second = p * (low * low + low * high + high * high) / 3 + (1 - p) * constant**2
    return mean, max(second - mean * mean, 0.0)


def param_moments(
    sampler: ViewSampler,
    height: int | None = None,
    width: int | None = None,
    num_samples: int = 20_000,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation ``[11]`` of the sampler's parameter distribution.

    Flip, jitter factors, grayscale and blur sigma are mixtures of a constant and
    a uniform (or Bernoulli) variable, with closed-form moments. The crop box comes
    from rejection sampling, so its moments are a Monte-Carlo estimate over
    ``num_samples`` views of a ``height x width`` image (default: square at the
    sampler's size) drawn with a generator seeded by ``seed``.
    """
    if num_samples < 2:
        raise ConfigError(f"num_samples must be >= 2, got {num_samples}")
    o = sampler.options
    height = height or o.size
    width = width or o.size
    mean = torch.zeros(NUM_PARAMS, dtype=torch.float64)
    var = torch.zeros(NUM_PARAMS, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    crops = sampler.sample(num_samples, height, width, generator)[0][:, CROP].double()
    mean[CROP], var[CROP] = crops.mean(0), crops.var(0)
    mean[FLIP], var[FLIP] = _bernoulli(o.flip_p)
    for k, op in enumerate(JITTER_OPS):
        low, high = o.factor_range(op)
        mean[5 + k], var[5 + k] = _uniform_or_constant(o.jitter_p, low, high, NEUTRAL_JITTER[k])
    mean[GRAYSCALE], var[GRAYSCALE] = _bernoulli(o.grayscale_p)
    mean[BLUR_SIGMA], var[BLUR_SIGMA] = _uniform_or_constant(o.blur_p, *o.blur_sigma, 0.0)
    return mean.float(), var.sqrt().float()


class ParamStandardizer(nn.Module):
    """``(params - mean) / std`` per dimension, with mean and std as saved buffers.

    A dimension that never varies (std 0, e.g. ``flip_p=0``) gets std 1, so it
    standardises to a constant instead of dividing by zero.

    Args:
        mean: Per-dimension mean ``[P]``.
        std: Per-dimension standard deviation ``[P]``.

    Example:
        >>> standardizer = ParamStandardizer.from_sampler(ViewSampler())
        >>> standardizer(torch.zeros(2, 5, 11)).shape
        torch.Size([2, 5, 11])
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        if mean.shape != std.shape or mean.dim() != 1:
            raise ShapeError(
                f"mean and std must be equal 1-D shapes, got {list(mean.shape)}, {list(std.shape)}"
            )
        std = torch.where(std > 0, std, torch.ones_like(std))
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float())

    @classmethod
    def from_sampler(
        cls,
        sampler: ViewSampler,
        height: int | None = None,
        width: int | None = None,
        num_samples: int = 20_000,
        seed: int = 0,
    ) -> ParamStandardizer:
        """Statistics from :func:`param_moments` of ``sampler``."""
        return cls(*param_moments(sampler, height, width, num_samples, seed))

    def forward(self, params: Tensor) -> Tensor:
        """Standardise ``[..., P]`` parameters."""
        return (params - self.mean) / self.std

    def inverse(self, standardized: Tensor) -> Tensor:
        """Undo :meth:`forward`."""
        return standardized * self.std + self.mean
