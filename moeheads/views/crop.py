"""Random resized crop boxes drawn from given uniforms (torchvision's algorithm)."""

from __future__ import annotations

import math
from collections.abc import Sequence

CROP_ATTEMPTS = 10
"""Rejection-sampling attempts before the centre-crop fallback."""

CROP_UNIFORMS = 4 * CROP_ATTEMPTS
"""Uniforms consumed by :func:`sample_crop` (four per attempt)."""


def sample_crop(
    uniforms: Sequence[float],
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> tuple[int, int, int, int]:
    """A crop box ``(top, left, crop_height, crop_width)`` in pixels.

    The same distribution as ``torchvision.transforms.v2.RandomResizedCrop``: up to
    10 attempts draw an area fraction from ``U(scale)`` and a log-uniform aspect
    ratio; the first box that fits is placed uniformly. Otherwise the largest
    centred box with the aspect ratio clamped to ``ratio`` is used.

    Args:
        uniforms: At least ``CROP_UNIFORMS`` values in [0, 1).
        height: Image height.
        width: Image width.
        scale: Area fraction range.
        ratio: Aspect ratio (width / height) range.
    """
    area = height * width
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for attempt in range(CROP_ATTEMPTS):
        u_area, u_ratio, u_top, u_left = uniforms[4 * attempt : 4 * attempt + 4]
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u_area)
        aspect = math.exp(log_low + (log_high - log_low) * u_ratio)
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(u_top * (height - h + 1))
            left = int(u_left * (width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w
