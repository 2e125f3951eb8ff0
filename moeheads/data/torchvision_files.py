"""Reading transfer datasets through torchvision's dataset classes, as :class:`ImageFiles`.

torchvision parses each dataset's own split and label files; moeheads keeps the
resulting ``(file, label)`` list (sorted by path, so splits are reproducible)
and decodes images itself, with its errors and corrupt-file handling.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moeheads.data.base import missing_data
from moeheads.data.folder import ImageFiles
from moeheads.errors import DataError

if TYPE_CHECKING:
    from torchvision.datasets import VisionDataset


def samples_of(dataset: VisionDataset) -> list[tuple[Path, int]]:
    """The ``(image file, label)`` pairs of a torchvision file-based dataset, sorted by path."""
    from torchvision.datasets import Caltech101

    if isinstance(dataset, Caltech101):
        folder = Path(dataset.root) / "101_ObjectCategories"
        pairs: Any = [
            (folder / dataset.categories[y] / f"image_{i:04d}.jpg", y)
            for i, y in zip(dataset.index, dataset.y, strict=True)
        ]
    elif hasattr(dataset, "_samples"):
        pairs = dataset._samples
    else:
        files = getattr(dataset, "_image_files", None)
        files = dataset._images if files is None else files  # type: ignore[attr-defined]
        pairs = zip(files, dataset._labels, strict=True)  # type: ignore[attr-defined]
    return sorted(((Path(p), int(y)) for p, y in pairs), key=lambda pair: str(pair[0]))


def from_torchvision(
    name: str,
    build: Callable[[], VisionDataset],
    looked_in: Path,
    layout: str,
    obtain: str,
    *,
    download: bool = False,
    skip_corrupt: bool = False,
    num_classes: int | None = None,
) -> ImageFiles:
    """Build a torchvision dataset and turn it into :class:`ImageFiles`.

    Args:
        name: Registered dataset name, for messages.
        build: Creates the torchvision dataset (with ``download`` already passed).
        looked_in: The folder the data was expected in, for messages.
        layout: Expected layout, for messages.
        obtain: How to obtain the files, for messages.
        download: Whether ``build`` downloads (failures then report the download).
        skip_corrupt: Skip unreadable images (counted) instead of raising.
        num_classes: Number of classes when torchvision gives no class names.

    Raises:
        DataError: When the files are missing, incomplete or the download failed.
    """
    try:
        dataset = build()
    except ImportError as error:
        raise DataError(
            f"{name}: reading its files needs {error.name}: pip install scipy"
        ) from error
    except (RuntimeError, OSError, KeyError, ValueError) as error:
        if download:
            raise DataError(f"{name}: download into {looked_in} failed: {error}") from error
        raise missing_data(name, looked_in, layout, obtain) from error
    paths, labels = zip(*samples_of(dataset), strict=True) if len(dataset) else ((), ())
    classes = list(getattr(dataset, "classes", None) or getattr(dataset, "categories", None) or [])
    return ImageFiles(paths, labels, classes, num_classes, name=name, skip_corrupt=skip_corrupt)
