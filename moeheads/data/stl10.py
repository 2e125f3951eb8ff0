"""STL-10 in its binary release (``stl10_binary/``), memory-mapped."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from moeheads._lazy import lazy_import
from moeheads.data.arrays import ArrayImages
from moeheads.data.base import ConcatImages, ImageDataset, missing_data
from moeheads.data.catalog import DATASETS
from moeheads.data.download import fetch_archive
from moeheads.errors import DataError

IMAGE_SHAPE = (3, 96, 96)
LAYOUT = "<root>/stl10_binary/{train_X,train_y,test_X,test_y,unlabeled_X}.bin and class_names.txt"
URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"  # torchvision STL10.url
OBTAIN = f"use download: true or fetch {URL}"
BASE_FOLDER = "stl10_binary"
tvd = lazy_import("torchvision.datasets")


def _folder(root: Path) -> Path:
    root = Path(root)
    return root if root.name == BASE_FOLDER else root / BASE_FOLDER


def read_stl10_images(path: Path) -> np.ndarray:
    """Memory-map an STL-10 ``*_X.bin`` file as ``[N, 3, W, H]`` uint8 (column-major pixels).

    Raises:
        DataError: When the file is empty or not a whole number of images (truncated).
    """
    image_bytes = int(np.prod(IMAGE_SHAPE))
    size = path.stat().st_size
    if size == 0 or size % image_bytes:
        raise DataError(
            f"stl10: {path} is damaged ({size} bytes, not a whole number of {image_bytes}-byte "
            f"images); delete it and {OBTAIN}"
        )
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(size // image_bytes, *IMAGE_SHAPE))


def _part(folder: Path, prefix: str, classes: list[str]) -> ArrayImages:
    images_path = folder / f"{prefix}_X.bin"
    labels_path = folder / f"{prefix}_y.bin"
    for path in (images_path, labels_path) if prefix != "unlabeled" else (images_path,):
        if not path.is_file():
            raise missing_data("stl10", path, LAYOUT, OBTAIN)
    images = read_stl10_images(images_path)
    if prefix == "unlabeled":
        targets = np.full(len(images), -1, dtype=np.int64)
        return ArrayImages(images, targets, "NCWH", num_classes=0, name="stl10")
    targets = np.fromfile(labels_path, dtype=np.uint8).astype(np.int64) - 1
    if len(targets) != len(images) or not ((targets >= 0) & (targets < len(classes))).all():
        raise DataError(
            f"stl10: {images_path} and {labels_path} are damaged ({len(images)} images, "
            f"{len(targets)} labels in 1..{len(classes)} expected); delete them and {OBTAIN}"
        )
    return ArrayImages(images, targets, "NCWH", classes, name="stl10")


@DATASETS.register("stl10")
def stl10(
    root: Path,
    split: Literal["train", "test", "unlabeled", "train+unlabeled"] = "train",
    download: bool = False,
) -> ImageDataset:
    """STL-10 (96 px, 10 classes, 100k unlabeled images) from torchvision's binary layout.

    Args:
        root: The folder holding ``stl10_binary/`` (or ``stl10_binary`` itself).
        split: ``train`` (5k), ``test`` (8k), ``unlabeled`` (100k, label -1) or
            ``train+unlabeled`` (105k, the STAR pretraining set).
        download: Download and extract the 2.6 GB archive when it is missing.
    """
    folder = _folder(root)
    if download and not (folder / "class_names.txt").is_file():
        fetch_archive("stl10", URL, folder.parent, tvd.STL10.filename, tvd.STL10.tgz_md5)
    names_file = folder / "class_names.txt"
    if not names_file.is_file():
        raise missing_data("stl10", folder, LAYOUT, OBTAIN)
    classes = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    if split == "train+unlabeled":
        return ConcatImages([_part(folder, "train", classes), _part(folder, "unlabeled", classes)])
    return _part(folder, split, classes)
