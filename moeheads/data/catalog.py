"""The dataset registry and the ``create_dataset`` helper."""

from __future__ import annotations

from typing import Any

from moeheads.data.base import ImageDataset
from moeheads.registry import Registry

DATASETS: Registry[ImageDataset] = Registry("dataset")
"""Every dataset by name; options are validated against each factory's signature."""


def create_dataset(name: str, **options: Any) -> ImageDataset:
    """Build the dataset registered as ``name`` with validated ``options``.

    Example:
        >>> from moeheads.data import create_dataset
        >>> shapes = create_dataset("synthetic_shapes", length=8, size=32)
        >>> image, label = shapes[0]
        >>> tuple(image.shape), image.dtype
        ((3, 32, 32), torch.uint8)

    Raises:
        ConfigError: For an unknown name or option.
        DataError: When the dataset's files are missing or unreadable.
    """
    return DATASETS.create(name, **options)
