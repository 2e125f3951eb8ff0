"""Datasets whose images live in one in-memory or memory-mapped array (STL-10, CIFAR, IDX)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from moeheads.data.base import ImageDataset
from moeheads.data.images import to_rgb_uint8


class ArrayImages(ImageDataset):
    """Images stored as one uint8 array, ``[N, C, H, W]``, ``[N, H, W, C]`` or ``[N, H, W]``.

    ``"NCWH"`` reads column-major images (STL-10's binary format).

    Args:
        images: The pixel array (may be a ``numpy.memmap``).
        targets: One label per image (-1 for unlabeled).
        layout: How ``images`` is laid out.
        classes: Class names.
        num_classes: Number of classes when ``classes`` is not given.
        name: Dataset name for messages.
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: Sequence[int] | Tensor | np.ndarray,
        layout: Literal["NCHW", "NCWH", "NHWC", "NHW"],
        classes: Sequence[str] = (),
        num_classes: int | None = None,
        name: str = "dataset",
    ) -> None:
        super().__init__(torch.as_tensor(np.asarray(targets)), classes, num_classes, name)
        if len(images) != len(self.targets):
            raise ValueError(f"{name}: {len(images)} images but {len(self.targets)} labels")
        self.images = images
        self.layout = layout

    def image(self, index: int) -> Tensor:
        """Item ``index`` as uint8 ``[3, H, W]``."""
        pixels = np.array(self.images[index], dtype=np.uint8)
        if self.layout == "NCWH":
            pixels = pixels.transpose(0, 2, 1)
        if self.layout in ("NCHW", "NCWH"):
            return to_rgb_uint8(torch.from_numpy(np.ascontiguousarray(pixels)))
        return to_rgb_uint8(pixels)

    def stacked_images(self, chunk: int = 4096) -> Tensor | None:
        """All images as uint8 ``[N, C, H, W]`` (C = 1 or 3; an alpha channel is dropped).

        The array is read ``chunk`` images at a time (it may be memory-mapped).
        """
        n = len(self.images)
        if n == 0:
            return None
        first = self._channels_first(np.asarray(self.images[:1]))
        if first.shape[1] not in (1, 3, 4):
            return None
        out = torch.empty((n, min(first.shape[1], 3), *first.shape[2:]), dtype=torch.uint8)
        for start in range(0, n, chunk):
            part = self._channels_first(np.asarray(self.images[start : start + chunk]))
            out[start : start + len(part)] = torch.from_numpy(np.ascontiguousarray(part[:, :3]))
        return out

    def _channels_first(self, pixels: np.ndarray) -> np.ndarray:
        """A ``[n, ...]`` slice of the array as ``[n, C, H, W]`` uint8."""
        pixels = pixels.astype(np.uint8, copy=False)
        if self.layout == "NCWH":
            return pixels.transpose(0, 1, 3, 2)
        if self.layout == "NHWC":
            return pixels.transpose(0, 3, 1, 2)
        if self.layout == "NHW":
            return pixels[:, None]
        return pixels
