"""``synthetic_shapes_boxes``: several shapes an image, each with a class and a box.

The detection counterpart of ``synthetic_shapes``, generated on the fly (no files):
every image is a pure function of ``(seed, split, index)``. Items are
``(image, target)`` as those of ``voc``: ``boxes`` (float ``[N, 4]``, ``x1, y1, x2,
y2`` pixels, the tight box of the drawn shape), ``labels`` (long ``[N]``, index
into the shape names) and ``difficult`` (all false).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from moeheads.data.catalog import DATASETS
from moeheads.data.shapes import SHAPES
from moeheads.data.synthetic import hash_uniform, hsv_to_rgb

_SPLITS = {"train": 0, "trainval": 0, "test": 1}
_COUNT, _LABEL, _HUE, _X, _Y, _SCALE, _ROT, _BG, _NOISE = range(9)


class SyntheticShapesBoxes(Dataset[tuple[Tensor, dict[str, Tensor]]]):
    """Images of 1 to ``max_objects`` shapes on a dark noisy background, with boxes.

    Args:
        length: Number of images.
        size: Image side in pixels.
        seed: Seed of the whole dataset.
        split: ``train`` (alias ``trainval``) or ``test``: disjoint hash streams.
        num_classes: Use the first ``num_classes`` shapes (2 to 10).
        max_objects: Most shapes an image.
        scale_range: Shape radius as a share of the image side.
    """

    def __init__(self, length: int, size: int = 64, seed: int = 0, split: str = "train",
                 num_classes: int = 3, max_objects: int = 3,
                 scale_range: tuple[float, float] = (0.12, 0.25)) -> None:
        if not 2 <= num_classes <= len(SHAPES):
            raise ValueError(f"num_classes must be in 2..{len(SHAPES)}, got {num_classes}")
        self.length, self.size, self.max_objects = length, size, max_objects
        self.scale_range = scale_range
        self.classes = list(SHAPES)[:num_classes]
        self.num_classes = num_classes
        self.name = "synthetic_shapes_boxes"
        self._stream = (seed, _SPLITS[split])

    def __len__(self) -> int:
        return self.length

    def _u(self, index: int, stream: int, *more: int | Tensor) -> Tensor:
        return hash_uniform(*self._stream, index, stream, *more)

    def _shape(self, index: int, k: int, x: Tensor, y: Tensor) -> tuple[Tensor, int, Tensor]:
        """Alpha ``[H, W]``, label and colour of shape ``k`` of image ``index``."""
        label = int(self._u(index, _LABEL, k) * self.num_classes)
        low, high = self.scale_range
        radius = (low + (high - low) * float(self._u(index, _SCALE, k))) * self.size
        cx = radius + float(self._u(index, _X, k)) * (self.size - 2 * radius)
        cy = radius + float(self._u(index, _Y, k)) * (self.size - 2 * radius)
        angle = 2 * math.pi * float(self._u(index, _ROT, k))
        dx, dy = (x - cx) / radius, (y - cy) / radius
        lx = math.cos(angle) * dx + math.sin(angle) * dy
        ly = -math.sin(angle) * dx + math.cos(angle) * dy
        alpha = (0.5 - SHAPES[self.classes[label]](lx, ly) * radius).clamp(0, 1)
        colour = hsv_to_rgb(self._u(index, _HUE, k), torch.tensor(0.8), torch.tensor(0.95))
        return alpha, label, colour

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        coords = torch.arange(self.size, dtype=torch.float32) + 0.5
        y, x = torch.meshgrid(coords, coords, indexing="ij")
        pixels = torch.arange(3 * self.size * self.size).reshape(3, self.size, self.size)
        image = 0.1 + 0.15 * self._u(index, _BG) + 0.06 * (2 * self._u(index, _NOISE, pixels) - 1)
        count = 1 + int(self._u(index, _COUNT) * self.max_objects)
        boxes, labels = [], []
        for k in range(count):
            alpha, label, colour = self._shape(index, k, x, y)
            image = alpha * colour[:, None, None] + (1 - alpha) * image
            inside = alpha > 0.5
            if not inside.any():
                continue
            cols, rows = inside.any(0).nonzero(), inside.any(1).nonzero()
            boxes.append([float(cols.min()), float(rows.min()), float(cols.max()) + 1,
                          float(rows.max()) + 1])
            labels.append(label)
        target = {"boxes": torch.tensor(boxes).reshape(-1, 4),
                  "labels": torch.tensor(labels, dtype=torch.long),
                  "difficult": torch.zeros(len(labels), dtype=torch.bool)}
        return (image.clamp(0, 1) * 255).round().to(torch.uint8), target


@DATASETS.register("synthetic_shapes_boxes")
def synthetic_shapes_boxes(
    root: Path | None = None,
    split: Literal["train", "trainval", "test"] = "train",
    download: bool = False,
    length: int | None = None,
    size: int = 64,
    seed: int = 0,
    num_classes: int = 3,
    max_objects: int = 3,
) -> SyntheticShapesBoxes:
    """Shapes with boxes for detection, generated on the fly (no files).

    Args:
        root: Unused (nothing is stored).
        split: ``train`` (or ``trainval``) or ``test``.
        download: Unused.
        length: Number of images; 2,000 for train and 500 for test when omitted.
        size: Image side in pixels.
        seed: Seed of the whole dataset.
        num_classes: Use the first ``num_classes`` of the ten shapes.
        max_objects: Most shapes an image (at least one).
    """
    del root, download
    count = length if length is not None else (500 if split == "test" else 2000)
    return SyntheticShapesBoxes(count, size, seed, split, num_classes, max_objects)


synthetic_shapes_boxes.needs_files = False  # type: ignore[attr-defined]  # no files to check
