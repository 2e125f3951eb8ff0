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
