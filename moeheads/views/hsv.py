"""Batched RGB <-> HSV conversion and hue shift, following torchvision's formulas."""

from __future__ import annotations

import torch
from torch import Tensor

from moeheads.views.color import per_image


def rgb_to_hsv(image: Tensor) -> Tensor:
    """HSV ``[N, 3, H, W]`` (all channels in [0, 1]) of float RGB images in [0, 1]."""
    r, g, b = image.unbind(dim=-3)
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    eqc = maxc == minc
    spread = maxc - minc
    ones = torch.ones_like(maxc)
    s = spread / torch.where(eqc, ones, maxc)
    divisor = torch.where(eqc, ones, spread).unsqueeze(-3)
    rc, gc, bc = ((maxc.unsqueeze(-3) - image) / divisor).unbind(dim=-3)
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, rc + 2.0 - bc, gc + 4.0 - rc))
    h = h.mul_(1.0 / 6.0).add_(1.0).fmod_(1.0)
    return torch.stack((h, s, maxc), dim=-3)


def hsv_to_rgb(image: Tensor) -> Tensor:
    """Float RGB ``[N, 3, H, W]`` in [0, 1] of HSV images.

    Channel c is ``v - v * s * clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n_c + 6 h) mod 6`` and ``n = (5, 3, 1)`` for (r, g, b): the closed form
    of torchvision's sector table, equal to it up to float rounding.
    """
    h, s, v = image.unbind(dim=-3)
    h6 = h * 6.0
    vs = v * s
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (h6 + n).remainder_(6.0)
        ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
        channels.append(torch.addcmul(v, vs, ramp, value=-1.0))
    return torch.stack(channels, dim=-3)


def adjust_hue(image: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of each image by ``shift`` ``[N]`` (in turns, within [-0.5, 0.5])."""
    h, s, v = rgb_to_hsv(image).unbind(dim=-3)
    h = (h + per_image(shift, image).squeeze(-3)).remainder_(1.0)
    return hsv_to_rgb(torch.stack((h, s, v), dim=-3))
