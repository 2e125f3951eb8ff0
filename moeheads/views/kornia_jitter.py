"""Colour jitter with the semantics of kornia 0.4.1, which STAR's authors used.

kornia 0.4.1's ``ColorJitter`` (as the authors call it) differs from torchvision's:

* brightness is additive: ``clamp(x + (f - 1), 0, 1)`` (torchvision: ``x * f``);
* contrast multiplies without subtracting the mean: ``clamp(x * f, 0, 1)``
  (torchvision blends with the mean grey);
* saturation scales S in HSV: ``S <- clamp(S * f, 0, 1)`` (torchvision blends with
  the luma);
* hue rotates H by ``f`` turns (as torchvision does).

The factors are drawn from the same ranges and stored in the same places of the
11-value parameter vector, so only the meaning of applying them differs. The
order of the four ops is drawn once per batch (per call of the authors'
transform, i.e. per view group) rather than per image:
:class:`~moeheads.views.photometric.Photometric` applies the order of each view
group's first image to the whole group.

Images are float ``[N, 3, H, W]`` in [0, 1]; factors are ``[N]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from moeheads.views.color import per_image
from moeheads.views.hsv import adjust_hue, hsv_to_rgb, rgb_to_hsv


def kornia_brightness(image: Tensor, factor: Tensor) -> Tensor:
    """``clamp(image + (factor - 1), 0, 1)``."""
    return (image + (per_image(factor, image) - 1.0)).clamp_(0.0, 1.0)


def kornia_contrast(image: Tensor, factor: Tensor) -> Tensor:
    """``clamp(image * factor, 0, 1)``."""
    return (image * per_image(factor, image)).clamp_(0.0, 1.0)


def kornia_saturation(image: Tensor, factor: Tensor) -> Tensor:
    """Scale the HSV saturation by ``factor`` (clamped to [0, 1]), hue and value kept."""
    h, s, v = rgb_to_hsv(image).unbind(dim=-3)
    s = (s * per_image(factor, image).squeeze(-3)).clamp_(0.0, 1.0)
    return hsv_to_rgb(torch.stack((h, s, v), dim=-3))


def kornia_hue(image: Tensor, factor: Tensor) -> Tensor:
    """Rotate the hue by ``factor`` turns (kornia: ``2 * pi * factor`` radians)."""
    return adjust_hue(image, factor)


KORNIA_OPS = (kornia_brightness, kornia_contrast, kornia_saturation, kornia_hue)
"""The four ops in the order of :data:`~moeheads.views.layout.JITTER_OPS`."""
