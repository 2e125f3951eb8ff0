"""Batched RGB <-> HSV conversion and hue shift, following torchvision's formulas."""

from __future__ import annotations

import torch
from torch import Tensor

from moeheads.views.color import per_image

# vpqt -> rgb: for sector i (0..5) the index into (v, p, q, t) of r, g and b.
_SELECT = ((0, 2, 1, 1, 3, 0), (3, 0, 0, 2, 1, 1), (1, 1, 3, 0, 0, 2))


def rgb_to_hsv(image: Tensor) -> Tensor:
    """HSV ``[N, 3, H, W]`` (all channels in [0, 1]) of float RGB images in [0, 1]."""
    r, g, _ = image.unbind(dim=-3)
    minc, maxc = torch.aminmax(image, dim=-3)
    eqc = maxc == minc
    spread = maxc - minc
    ones = torch.ones_like(maxc)
    s = spread / torch.where(eqc, ones, maxc)
    divisor = torch.where(eqc, ones, spread).unsqueeze(-3)
    rc, gc, bc = ((maxc.unsqueeze(-3) - image) / divisor).unbind(dim=-3)
    max_is_r = maxc == r
    max_is_g = (maxc == g) & ~max_is_r
    max_is_b = ~max_is_r & ~max_is_g
    h = (bc - gc) * max_is_r + (rc + 2.0 - bc) * max_is_g + (gc + 4.0 - rc) * max_is_b
    h = h.mul_(1.0 / 6.0).add_(1.0).fmod_(1.0)
    return torch.stack((h, s, maxc), dim=-3)


def hsv_to_rgb(image: Tensor) -> Tensor:
    """Float RGB ``[N, 3, H, W]`` in [0, 1] of HSV images."""
    h, s, v = image.unbind(dim=-3)
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    sector = i.to(torch.int64).remainder_(6)
    sxf = s * f
    one_minus_s = 1.0 - s
    q = (1.0 - sxf).mul_(v).clamp_(0.0, 1.0)
    t = sxf.add_(one_minus_s).mul_(v).clamp_(0.0, 1.0)
    p = one_minus_s.mul_(v).clamp_(0.0, 1.0)
    vpqt = torch.stack((v, p, q, t), dim=-3)
    select = torch.tensor(_SELECT, dtype=torch.int64, device=image.device)[:, sector]
    return vpqt.gather(-3, select.movedim(0, -3))


def adjust_hue(image: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of each image by ``shift`` ``[N]`` (in turns, within [-0.5, 0.5])."""
    h, s, v = rgb_to_hsv(image).unbind(dim=-3)
    h = (h + per_image(shift, image).squeeze(-3)).remainder_(1.0)
    return hsv_to_rgb(torch.stack((h, s, v), dim=-3))
