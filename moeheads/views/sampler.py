"""Draw the parameters of V views from a seeded generator."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from moeheads.errors import ConfigError
from moeheads.views.crop import CROP_UNIFORMS, sample_crop
from moeheads.views.layout import JITTER_OPS, NEUTRAL_JITTER
from moeheads.views.options import ViewOptions

_UNIFORMS_PER_VIEW = CROP_UNIFORMS + 14  # flip 1, jitter 1+4+4, grayscale 1, blur 2


class ViewSampler:
    """Samples each view's augmentation parameters (layout: `moeheads.views.layout`).

    All randomness comes from one ``torch.Generator`` call per sample
    (``torch.rand(V, 54, dtype=float64)``), so a seeded generator gives the same
    views on every machine and in every DataLoader worker.

    Args:
        options: A :class:`ViewOptions`, a dict of its fields, or ``None`` for the
            defaults; keyword ``overrides`` replace single fields.

    Example:
        >>> sampler = ViewSampler(size=96)
        >>> g = torch.Generator().manual_seed(0)
        >>> params, order = sampler.sample(2, height=110, width=120, generator=g)
        >>> params.shape, order.shape
        (torch.Size([2, 11]), torch.Size([2, 4]))
    """

    def __init__(self, options: ViewOptions | dict[str, Any] | None = None, **overrides: Any):
        if isinstance(options, ViewOptions):
            base = options.model_dump()
        elif options is None:
            base = {}
        elif isinstance(options, dict):
            base = dict(options)
        else:
            raise ConfigError(f"views: options must be a ViewOptions or a dict, got {options!r}")
        self.options = ViewOptions(**{**base, **overrides})

    @property
    def size(self) -> int:
        """Output side length in pixels."""
        return self.options.size

    def sample(
        self, num_views: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Parameters of ``num_views`` views of one ``height x width`` image.

        Returns:
            ``params`` float32 ``[V, 11]`` and ``jitter_order`` int64 ``[V, 4]``.
        """
        if num_views < 1:
            raise ConfigError(f"num_views must be >= 1, got {num_views}")
        if height < 1 or width < 1:
            raise ConfigError(f"image size must be positive, got {height}x{width}")
        uniforms = torch.rand(
            num_views, _UNIFORMS_PER_VIEW, generator=generator, dtype=torch.float64
        ).tolist()
        rows = [self._view(u, height, width) for u in uniforms]
        params = torch.tensor([r[0] for r in rows], dtype=torch.float32)
        order = torch.tensor([r[1] for r in rows], dtype=torch.int64)
        return params, order

    def _view(self, u: list[float], height: int, width: int) -> tuple[list[float], list[int]]:
        o = self.options
        top, left, h, w = sample_crop(u, height, width, o.scale, o.ratio)
        u = u[CROP_UNIFORMS:]
        flip = float(u[0] < o.flip_p)
        if u[1] < o.jitter_p:
            factors = [
                low + (high - low) * x
                for (low, high), x in zip(
                    (o.factor_range(op) for op in JITTER_OPS), u[2:6], strict=True
                )
            ]
        else:
            factors = list(NEUTRAL_JITTER)
        order = sorted(range(len(JITTER_OPS)), key=lambda k: u[6 + k])
        gray = float(u[10] < o.grayscale_p)
        low, high = o.blur_sigma
        sigma = low + (high - low) * u[12] if u[11] < o.blur_p else 0.0
        return [
            top / height,
            left / width,
            h / height,
            w / width,
            flip,
            *factors,
            gray,
            sigma,
        ], order

    def __repr__(self) -> str:
        return f"ViewSampler({self.options!r})"
