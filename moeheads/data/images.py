"""Decoding image files and converting images to moeheads' item format (uint8 ``[3, H, W]`` RGB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from moeheads.errors import DataError

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
)
"""File name endings (lower case) treated as images when scanning folders."""

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def is_image_file(path: Path) -> bool:
    """Whether ``path`` has an image file ending (case-insensitive) and is not hidden."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def to_rgb_uint8(image: Image.Image | np.ndarray | Tensor) -> Tensor:
    """Convert a PIL image, an ``[H, W]`` / ``[H, W, C]`` array or a tensor to uint8 ``[3, H, W]``.

    Grayscale inputs are repeated to three channels; an alpha channel is dropped.
    Arrays are read as channels-last, tensors as channels-first (``[C, H, W]`` or ``[H, W]``).
    """
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    if isinstance(image, np.ndarray):
        array = image if image.ndim == 2 else np.moveaxis(image, -1, 0)
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    else:
        tensor = image
    if tensor.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels, got {tensor.dtype}")
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    channels = tensor.shape[0]
    if channels == 1:
        tensor = tensor.expand(3, -1, -1)
    elif channels == 4:
        tensor = tensor[:3]
    elif channels != 3:
        raise ValueError(f"expected 1, 3 or 4 channels, got shape {tuple(tensor.shape)}")
    return tensor.contiguous()


def read_image(path: str | Path) -> Tensor:
    """Decode an image file to uint8 ``[3, H, W]`` RGB.

    Raises:
        DataError: Naming the file when it is missing, truncated or not an image.
    """
    try:
        with Image.open(path) as image:
            return to_rgb_uint8(image.convert("RGB"))
    except _DECODE_ERRORS as error:
        reason = str(error) or type(error).__name__
        raise DataError(f"cannot read image {path}: {reason}") from error
