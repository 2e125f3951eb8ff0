"""``synthetic_shapes``: procedurally drawn shapes with known class, colour and pose.

Every image is a pure function of ``(seed, split, index)``: its factors come from
a counter-based integer hash, so any item can be drawn alone or in a batch, in
any process, at any resolution, with the same result. Drawing is vectorised:
signed distance functions evaluated on a pixel grid for the whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.data.base import ImageDataset
from moeheads.data.catalog import DATASETS
from moeheads.data.shapes import SHAPES

FACTOR_NAMES = ("label", "hue", "x", "y", "scale", "rotation")
"""Factors returned by :meth:`SyntheticShapes.factors`."""

_MASK = 0xFFFFFFFF
_SPLITS = {"train": 0, "test": 1}
_DEFAULT_LENGTH = {"train": 20_000, "test": 5_000}
_TEXTURE_GRID = 5
# Streams of the hash: one per random quantity drawn for an image.
_HUE, _X, _Y, _SCALE, _ROT, _SAT, _VAL, _BG_HUE, _BG_SAT, _BG_VAL, _TEXTURE, _NOISE = range(12)


def _mix(x: Tensor) -> Tensor:
    """A 32-bit integer hash (inputs and outputs in ``[0, 2**32)``, int64 tensors)."""
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK
    return (x >> 16) ^ x


def hash_uniform(*keys: Tensor | int) -> Tensor:
    """Uniform floats in ``[0, 1)`` that depend only on the (broadcast) integer ``keys``."""
    state = torch.zeros((), dtype=torch.long)
    for key in keys:
        state = _mix(
            ((state ^ (torch.as_tensor(key, dtype=torch.long) & _MASK)) + 0x9E3779B9) & _MASK
        )
    return (state >> 8).float() / 2.0**24  # 24 bits: exact in float32, never 1.0


def hsv_to_rgb(hue: Tensor, saturation: Tensor, value: Tensor) -> Tensor:
    """HSV (each ``[...]`` in ``[0, 1]``) to RGB ``[..., 3]`` in ``[0, 1]``."""
    k = torch.tensor([5.0, 3.0, 1.0])
    phase = torch.remainder(k + hue.unsqueeze(-1) * 6.0, 6.0)
    weight = torch.clamp(torch.minimum(phase, 4.0 - phase), 0.0, 1.0)
    return value.unsqueeze(-1) * (1.0 - saturation.unsqueeze(-1) * weight)


class SyntheticShapes(ImageDataset):
    """Shapes of ten classes on textured backgrounds, with recorded hue, position, scale, rotation.

    The label is the shape (see ``moeheads.data.shapes.SHAPES``); labels cycle
    through the classes, so every class has the same number of items. Factors:
    ``hue`` of the shape in ``[0, 1)``; ``x``, ``y`` its centre in ``[-1, 1]`` image
    coordinates (x right, y down); ``scale`` its radius as a share of half the image
    side; ``rotation`` in radians ``[0, 2*pi)`` (shapes with rotational symmetry
    look alike under some rotations, see ``ROTATION_ORDER``). Backgrounds are
    low-frequency two-colour textures plus pixel noise, darker than the shape.

    Args:
        length: Number of items.
        size: Image side in pixels.
        seed: Seed of the whole dataset.
        split: ``train`` or ``test`` (a different hash stream: disjoint images).
        num_classes: Use the first ``num_classes`` shapes (2 to 10).
        scale_range: Range of ``scale``.
        noise: Amplitude of the per-pixel noise (0 to 1).
        texture: Contrast of the background texture: 1 blends the two background
            colours fully, 0 gives a flat background of their mean colour.
    """

    def __init__(
        self,
        length: int = 20_000,
        size: int = 32,
        seed: int = 0,
        split: Literal["train", "test"] = "train",
        num_classes: int = 10,
        scale_range: tuple[float, float] = (0.35, 0.65),
        noise: float = 0.06,
        texture: float = 1.0,
    ) -> None:
        if not 2 <= num_classes <= len(SHAPES):
            raise ValueError(f"num_classes must be in 2..{len(SHAPES)}, got {num_classes}")
        low, high = scale_range
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"scale_range must satisfy 0 < low <= high <= 1, got {scale_range}")
        if not 0.0 <= texture <= 1.0:
            raise ValueError(f"texture must be in [0, 1], got {texture}")
        shape_names = list(SHAPES)[:num_classes]
        super().__init__(torch.arange(length) % num_classes, shape_names, name="synthetic_shapes")
        self.size = size
        self.seed = seed
        self.split = split
        self.scale_range = scale_range
        self.noise = noise
        self.texture = texture
        self._stream = (seed & _MASK, _SPLITS[split])

    def _uniform(self, indices: Tensor, stream: int, *more: Tensor | int) -> Tensor:
        return hash_uniform(*self._stream, indices, stream, *more)

    def factors(self, indices: int | Sequence[int] | Tensor) -> dict[str, Tensor]:
        """The factors of one item (0-d tensors) or of a batch (``[B]`` tensors).

        Keys are :data:`FACTOR_NAMES`: ``label`` (long), ``hue``, ``x``, ``y``,
        ``scale``, ``rotation`` (float32).
        """
        index = torch.as_tensor(indices, dtype=torch.long)
        low, high = self.scale_range
        scale = low + (high - low) * self._uniform(index, _SCALE)
        reach = 1.0 - scale
        return {
            "label": self.targets[index],
            "hue": self._uniform(index, _HUE),
            "x": reach * (2 * self._uniform(index, _X) - 1),
            "y": reach * (2 * self._uniform(index, _Y) - 1),
            "scale": scale,
            "rotation": 2 * math.pi * self._uniform(index, _ROT),
        }

    def render(self, indices: Sequence[int] | Tensor) -> Tensor:
        """Draw a batch of items: uint8 ``[B, 3, size, size]``."""
        index = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        f = self.factors(index)
        alpha = self._shape_alpha(f)  # [B, H, W]
        foreground = hsv_to_rgb(
            f["hue"],
            0.65 + 0.35 * self._uniform(index, _SAT),
            0.75 + 0.25 * self._uniform(index, _VAL),
        )
        image = alpha[:, None] * foreground[:, :, None, None]
        image = image + (1 - alpha[:, None]) * self._background(index)
        pixels = torch.arange(3 * self.size * self.size).reshape(1, 3, self.size, self.size)
        noise = self._uniform(index[:, None, None, None], _NOISE, pixels)
        image = image + self.noise * (2 * noise - 1)
        return (image.clamp(0, 1) * 255).round().to(torch.uint8)

    def _grid(self) -> tuple[Tensor, Tensor]:
        coords = (torch.arange(self.size, dtype=torch.float32) + 0.5) / self.size * 2 - 1
        y, x = torch.meshgrid(coords, coords, indexing="ij")
        return x, y

    def _shape_alpha(self, f: dict[str, Tensor]) -> Tensor:
        x, y = self._grid()
        dx = x - f["x"][:, None, None]
        dy = y - f["y"][:, None, None]
        cos = torch.cos(f["rotation"])[:, None, None]
        sin = torch.sin(f["rotation"])[:, None, None]
        scale = f["scale"][:, None, None]
        local_x = (cos * dx + sin * dy) / scale
        local_y = (-sin * dx + cos * dy) / scale
        distance = torch.empty_like(local_x)
        for label, sdf in enumerate(SHAPES.values()):
            chosen = f["label"] == label
            if chosen.any():
                distance[chosen] = sdf(local_x[chosen], local_y[chosen])
        pixels = distance * scale * (self.size / 2)  # local units -> pixels
        return (0.5 - pixels).clamp(0, 1)

    def _background(self, index: Tensor) -> Tensor:
        hue = self._uniform(index, _BG_HUE)
        colours = torch.stack(
            [
                hsv_to_rgb(
                    torch.remainder(hue + 0.15 * k, 1.0),
                    0.2 + 0.5 * self._uniform(index, _BG_SAT, k),
                    0.15 + 0.35 * self._uniform(index, _BG_VAL, k),
                )
                for k in range(2)
            ]
        )  # [2, B, 3]
        cells = torch.arange(_TEXTURE_GRID * _TEXTURE_GRID).reshape(
            1, 1, _TEXTURE_GRID, _TEXTURE_GRID
        )
        field = self._uniform(index[:, None, None, None], _TEXTURE, cells)
        field = F.interpolate(
            field, size=(self.size, self.size), mode="bicubic", align_corners=False
        )
        field = field.clamp(0, 1)  # [B, 1, H, W]
        if self.texture != 1.0:
            field = 0.5 + self.texture * (field - 0.5)
        first, second = colours[0][:, :, None, None], colours[1][:, :, None, None]
        return first * field + second * (1 - field)

    def image(self, index: int) -> Tensor:
        """Draw item ``index`` (uint8 ``[3, size, size]``)."""
        return self.render([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Tensor, int]]:
        """Draw several items at once (used by ``DataLoader`` for batched fetching)."""
        images = self.render(indices)
        labels = self.targets[torch.as_tensor(indices, dtype=torch.long)].tolist()
        return list(zip(images, labels, strict=True))

    def stacked_images(self, chunk: int = 2048) -> Tensor | None:
        """Every item drawn once, as uint8 ``[length, 3, size, size]``."""
        if len(self) == 0:
            return None
        return torch.cat([self.render(torch.arange(start, min(start + chunk, len(self))))
                          for start in range(0, len(self), chunk)])

    def extra_repr(self) -> str:
        """Size, seed and split, for ``repr``."""
        return f"size={self.size}, seed={self.seed}, split={self.split!r}"


@DATASETS.register("synthetic_shapes")
def synthetic_shapes(
    root: Path | None = None,
    split: Literal["train", "test"] = "train",
    download: bool = False,
    length: int | None = None,
    size: int = 32,
    seed: int = 0,
    num_classes: int = 10,
    noise: float = 0.06,
    scale_range: tuple[float, float] = (0.35, 0.65),
    texture: float = 1.0,
) -> SyntheticShapes:
    """Procedurally drawn shapes with known class, hue and pose; needs no files (the default).

    Args:
        root: Unused (nothing is stored).
        split: ``train`` or ``test`` (disjoint hash streams).
        download: Unused.
        length: Number of items; 20,000 for train and 5,000 for test when omitted.
        size: Image side in pixels (any; 32 or 64 are typical).
        seed: Seed of the whole dataset.
        num_classes: Use the first ``num_classes`` of the ten shapes.
        noise: Amplitude of the per-pixel noise.
        scale_range: Range of the shape radius as a share of half the image side
            (``0 < low <= high <= 1``).
        texture: Contrast of the background texture (1: full, 0: a flat colour).
    """
    del root, download
    count = _DEFAULT_LENGTH[split] if length is None else length
    return SyntheticShapes(
        count, size, seed, split, num_classes, scale_range=tuple(scale_range), noise=noise,
        texture=texture,
    )


synthetic_shapes.needs_files = False  # type: ignore[attr-defined]  # measured by validate
