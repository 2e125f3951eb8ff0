"""Fashion-MNIST from its IDX files (gzipped or not), wherever they are."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Literal

import numpy as np

from moeheads._lazy import lazy_import
from moeheads.data.arrays import ArrayImages
from moeheads.data.base import missing_data
from moeheads.data.catalog import DATASETS
from moeheads.errors import DataError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the files."""

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]  # torchvision FashionMNIST.classes
tvd = lazy_import("torchvision.datasets")
_FILES = {"train": "train-{}-idx{}-ubyte", "test": "t10k-{}-idx{}-ubyte"}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
LAYOUT = "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in <root>, <root>/FashionMNIST/raw"
OBTAIN = f"use download: true, or apt-get install dataset-fashion-mnist (files in {DEBIAN_DIR})"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into an array of its stored shape and type.

    Raises:
        DataError: Naming the file when it is unreadable or malformed.
    """
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as file:
            data = file.read()
        zero, dtype_code, ndim = data[0] | data[1], data[2], data[3]
        if zero != 0 or dtype_code not in _IDX_TYPES:
            raise ValueError("not an IDX file (bad magic number)")
        shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        array = np.frombuffer(data, dtype=_IDX_TYPES[dtype_code], offset=4 + 4 * ndim)
        return array[: int(np.prod(shape))].reshape(shape)
    except (OSError, ValueError, EOFError, IndexError) as error:
        raise DataError(f"fashion_mnist: cannot read IDX file {path}: {error}") from error


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_idx_dir(root: Path | None) -> Path | None:
    """The first of ``root``, ``root/FashionMNIST/raw`` and the Debian location with the files."""
    candidates = [] if root is None else [Path(root), Path(root) / "FashionMNIST" / "raw"]
    for directory in [*candidates, DEBIAN_DIR]:
        if _find(directory, _FILES["test"].format("labels", 1)):
            return directory
    return None


@DATASETS.register("fashion_mnist")
def fashion_mnist(
    root: Path | None = None,
    split: Literal["train", "test"] = "train",
    download: bool = False,
) -> ArrayImages:
    """Fashion-MNIST (28 px grayscale, repeated to RGB; 10 classes) from IDX files.

    Args:
        root: A folder with the IDX files or a torchvision root (``FashionMNIST/raw``);
            the Debian package's location is searched last (and alone when omitted).
        split: ``train`` (60k) or ``test`` (10k).
        download: Download through torchvision into ``root`` when no files are found.
    """
    directory = find_idx_dir(root)
    if directory is None and download and root is not None:
        try:
            tvd.FashionMNIST(str(root), train=split == "train", download=True)
        except Exception as error:  # network and checksum errors alike
            raise DataError(f"fashion_mnist: download into {root} failed: {error}") from error
        directory = find_idx_dir(root)
    looked = f"{root} and {DEBIAN_DIR}" if root is not None else str(DEBIAN_DIR)
    if directory is None:
        raise missing_data("fashion_mnist", looked, LAYOUT, OBTAIN)
    stem = _FILES[split]
    paths = [_find(directory, stem.format("images", 3)), _find(directory, stem.format("labels", 1))]
    if paths[0] is None or paths[1] is None:
        raise missing_data("fashion_mnist", directory, LAYOUT, OBTAIN)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    return ArrayImages(images, labels.astype(np.int64), "NHW", CLASSES, name="fashion_mnist")
