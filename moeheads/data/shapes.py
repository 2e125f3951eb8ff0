"""Signed distance functions of the shapes drawn by ``synthetic_shapes``.

Each function maps local coordinates ``x, y`` (any equal shapes; the shape fits
the unit disk) to a signed distance, negative inside. Distances are exact or
close enough near the boundary for anti-aliased masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Sdf = Callable[[Tensor, Tensor], Tensor]


def _length(x: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y)


def box(x: Tensor, y: Tensor, half_width: float, half_height: float) -> Tensor:
    """An axis-aligned rectangle centred at the origin."""
    qx, qy = x.abs() - half_width, y.abs() - half_height
    outside = _length(qx.clamp(min=0), qy.clamp(min=0))
    return outside + torch.maximum(qx, qy).clamp(max=0)


def regular_polygon(x: Tensor, y: Tensor, sides: int, radius: float) -> Tensor:
    """A regular polygon with circumradius ``radius`` and a vertex on the +y axis."""
    sector = 2 * math.pi / sides
    angle = torch.atan2(x, y)
    local = torch.remainder(angle, sector) - sector / 2
    return _length(x, y) * torch.cos(local) - radius * math.cos(sector / 2)


def star(x: Tensor, y: Tensor, points: int = 5, outer: float = 1.0, inner: float = 0.45) -> Tensor:
    """A star whose radius alternates linearly in angle between ``outer`` and ``inner``."""
    sector = 2 * math.pi / points
    phase = torch.remainder(torch.atan2(x, y), sector) / sector
    radius = inner + (outer - inner) * (2 * (phase - 0.5)).abs()
    return _length(x, y) - radius


def circle(x: Tensor, y: Tensor) -> Tensor:
    """A disk."""
    return _length(x, y) - 0.9


def square(x: Tensor, y: Tensor) -> Tensor:
    """A square."""
    return box(x, y, 0.68, 0.68)


def triangle(x: Tensor, y: Tensor) -> Tensor:
    """An equilateral triangle."""
    return regular_polygon(x, y, 3, 1.0)


def five_star(x: Tensor, y: Tensor) -> Tensor:
    """A five-pointed star."""
    return star(x, y)


def cross(x: Tensor, y: Tensor) -> Tensor:
    """A plus sign."""
    return torch.minimum(box(x, y, 0.95, 0.28), box(x, y, 0.28, 0.95))


def ring(x: Tensor, y: Tensor) -> Tensor:
    """An annulus."""
    return (_length(x, y) - 0.68).abs() - 0.24


def crescent(x: Tensor, y: Tensor) -> Tensor:
    """A disk with an off-centre disk removed."""
    return torch.maximum(_length(x, y) - 0.92, 0.72 - _length(x - 0.45, y))


def half_disk(x: Tensor, y: Tensor) -> Tensor:
    """A half disk, centred on its bounding box."""
    shifted = y + 0.45
    return torch.maximum(_length(x, shifted) - 0.95, -shifted)


def ellipse(x: Tensor, y: Tensor) -> Tensor:
    """An ellipse with axes 2:0.9 (approximate distance)."""
    return (_length(x / 1.0, y / 0.45) - 1.0) * 0.45


def corner(x: Tensor, y: Tensor) -> Tensor:
    """An L shape."""
    upright = box(x + 0.45, y, 0.25, 0.85)
    foot = box(x, y - 0.6, 0.7, 0.25)
    return torch.minimum(upright, foot)


SHAPES: dict[str, Sdf] = {
    "circle": circle,
    "square": square,
    "triangle": triangle,
    "star": five_star,
    "cross": cross,
    "ring": ring,
    "crescent": crescent,
    "half_disk": half_disk,
    "ellipse": ellipse,
    "corner": corner,
}
"""Shape name -> signed distance function; the label of a shape is its position here."""

ROTATION_ORDER: dict[str, int] = {
    "circle": 0,
    "square": 4,
    "triangle": 3,
    "star": 5,
    "cross": 4,
    "ring": 0,
    "crescent": 1,
    "half_disk": 1,
    "ellipse": 2,
    "corner": 1,
}
"""Rotational symmetry of each shape: rotations by ``2*pi/order`` leave it unchanged (0: any)."""
