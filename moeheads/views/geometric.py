"""The geometric part of a view (crop, resize, flip), run per image in DataLoader workers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from moeheads._lazy import lazy_import
from moeheads.errors import ConfigError, ShapeError
from moeheads.views.layout import FLIP

TF = lazy_import("torchvision.transforms.v2.functional")


def to_image_tensor(image: Any) -> Tensor:
    """A uint8 ``[3, H, W]`` tensor from a PIL image or a uint8 ``[3|1, H, W]`` tensor."""
    if isinstance(image, Image.Image):
        image = TF.pil_to_tensor(image.convert("RGB"))
    if not isinstance(image, Tensor):
        raise ConfigError(f"an image must be a PIL image or a uint8 tensor, got {type(image)}")
    if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ShapeError(
            f"an image tensor must be uint8 [3, H, W] or [1, H, W], "
            f"got {image.dtype} {list(image.shape)}"
        )
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def crop_box(params: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """Pixel box ``(top, left, crop_height, crop_width)`` from one view's parameters."""
    top, left, h, w = params[:4]
    return round(top * height), round(left * width), round(h * height), round(w * width)


def apply_geometric(image: Tensor, params: Tensor, size: int, antialias: bool = True) -> Tensor:
    """Crop, resize to ``size x size`` (bilinear) and flip, as recorded in ``params``.

    Args:
        image: uint8 ``[3, H, W]``.
        params: One view's parameters ``[11]`` or several views' ``[V, 11]``.
        size: Output side length.
        antialias: Antialias when resizing.

    Returns:
        uint8 ``[3, size, size]`` (or ``[V, 3, size, size]`` for ``[V, 11]`` params).
    """
    if params.dim() == 2:
        return torch.stack([apply_geometric(image, p, size, antialias) for p in params])
    values = params.tolist()
    height, width = image.shape[-2:]
    top, left, h, w = crop_box(values, height, width)
    view = TF.resized_crop(image, top, left, h, w, [size, size], antialias=antialias)
    return TF.horizontal_flip(view) if values[FLIP] > 0.5 else view


def center_view(image: Tensor, size: int, antialias: bool = True) -> Tensor:
    """The un-augmented original: resize the shorter side to ``size``, centre-crop ``size``."""
    image = TF.resize(image, [size], antialias=antialias)
    return TF.center_crop(image, [size, size])
