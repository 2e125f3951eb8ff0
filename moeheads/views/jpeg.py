"""Encoded image files read as bytes (in DataLoader workers) and decoded in batches on a device."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from moeheads._lazy import lazy_import
from moeheads.errors import ConfigError, DataError

tvio = lazy_import("torchvision.io")  # loaded when a JPEG batch is decoded

JPEG_SUFFIXES = (".jpg", ".jpeg")
"""File endings (lower case) the device pipeline decodes with ``decode_jpeg``."""


def is_jpeg_dataset(dataset: Any) -> bool:
    """Whether every item of ``dataset`` is a JPEG file (by its ending)."""
    encoded = getattr(dataset, "encoded_file", None)
    if encoded is None or len(dataset) == 0:
        return False
    for index in range(len(dataset)):
        path = encoded(index)
        if path is None or Path(path).suffix.lower() not in JPEG_SUFFIXES:
            return False
    return True


class EncodedFiles(Dataset[tuple[int, Tensor, int]]):
    """The bytes of each item's file: ``(index, uint8 [n] bytes, label)``; no decoding.

    Args:
        dataset: A dataset whose ``encoded_file(index)`` gives a path for every item
            (e.g. :class:`~moeheads.data.ImageFiles`), with ``targets``.
    """

    def __init__(self, dataset: Any) -> None:
        if getattr(dataset, "encoded_file", None) is None:
            raise ConfigError(f"{dataset!r} has no encoded files to read")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, Tensor, int]:
        path = self.dataset.encoded_file(index)
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise DataError(f"cannot read image {path}: {error}") from error
        label = int(self.dataset.targets[index])
        return index, torch.frombuffer(bytearray(data), dtype=torch.uint8), label


def collate_encoded(items: Sequence[tuple[int, Tensor, int]]) -> tuple[list[int], list[Tensor],
                                                                        Tensor]:
    """Indices, byte tensors and labels of a batch (a picklable ``collate_fn``)."""
    indices = [item[0] for item in items]
    data = [item[1] for item in items]
    labels = torch.tensor([item[2] for item in items], dtype=torch.int64)
    return indices, data, labels


def _decode_pil(data: Tensor) -> Tensor:
    with Image.open(io.BytesIO(data.numpy().tobytes())) as image:
        pixels = np.array(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def decode_images(data: Sequence[Tensor], device: torch.device | str,
                  sources: Sequence[str] | None = None) -> list[Tensor]:
    """Decode JPEG bytes to uint8 ``[3, H, W]`` RGB images on ``device``, as one batch.

    ``torchvision.io.decode_jpeg`` decodes the batch (with nvJPEG on CUDA). When it
    fails, images are decoded one by one; one it cannot decode (a CMYK JPEG on some
    devices, another format with a JPEG name) is decoded with PIL on the CPU and moved.

    Raises:
        DataError: Naming the file (from ``sources``) that no decoder can read.
    """
    device = torch.device(device)
    with warnings.catch_warnings():  # torchvision 0.29 points to torchcodec for decoding
        warnings.simplefilter("ignore", DeprecationWarning)
        return _decode(data, device, sources)


def _decode(data: Sequence[Tensor], device: torch.device,
            sources: Sequence[str] | None) -> list[Tensor]:
    try:
        return list(tvio.decode_jpeg(list(data), mode=tvio.ImageReadMode.RGB, device=device))
    except RuntimeError:
        pass
    images = []
    for i, item in enumerate(data):
        try:
            images.append(tvio.decode_jpeg(item, mode=tvio.ImageReadMode.RGB, device=device))
            continue
        except RuntimeError:
            pass
        try:
            images.append(_decode_pil(item).to(device))
        except (OSError, ValueError, SyntaxError) as error:
            name = sources[i] if sources is not None else f"item {i}"
            raise DataError(f"cannot decode image {name}: {error}") from error
    return images
