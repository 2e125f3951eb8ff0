"""Writers of tiny datasets in their real on-disk formats, for the data tests."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def pixels(seed: int, height: int = 8, width: int = 8, channels: int = 3) -> np.ndarray:
    """A random uint8 image ``[H, W, C]`` (or ``[H, W]`` when ``channels`` is 1)."""
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_image(path: Path, seed: int = 0, size: int = 8, mode: str = "RGB") -> np.ndarray:
    """Write a random image (format from the suffix) and return its pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = pixels(seed, size, size, 1 if mode == "L" else 3)
    Image.fromarray(array, mode=mode).save(path)
    return array


def write_corrupt(path: Path) -> None:
    """Write a file with an image ending but no image inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8 this is not really a JPEG")


def write_idx(path: Path, array: np.ndarray, gzipped: bool) -> None:
    """Write a uint8 array as an IDX file (magic 0x08 type, big-endian sizes)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gzipped else data)


def write_stl10(root: Path, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Write ``stl10_binary/`` with ``counts`` images per prefix; returns them (N, 3, 96, 96)."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    (folder / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    written = {}
    for k, (prefix, count) in enumerate(counts.items()):
        images = np.random.default_rng(k).integers(0, 256, (count, 3, 96, 96), dtype=np.uint8)
        (folder / f"{prefix}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
        if prefix != "unlabeled":
            labels = (np.arange(count) % 10 + 1).astype(np.uint8)
            (folder / f"{prefix}_y.bin").write_bytes(labels.tobytes())
        written[prefix] = images
    return written


def _dump(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        pickle.dump(content, file)


def write_cifar10(root: Path, per_batch: int = 20) -> None:
    """Write ``cifar-10-batches-py/`` with ``per_batch`` images in each of the six batches."""
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        data = np.random.default_rng(k).integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(i + k) % 10 for i in range(per_batch)]
        _dump(folder / name, {"batch_label": name, "labels": labels, "data": data})
    _dump(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})


def write_cifar100(root: Path, per_class: int = 1) -> None:
    """Write ``cifar-100-python/`` with ``per_class`` train and test images of each fine class."""
    folder = root / "cifar-100-python"
    fine = np.repeat(np.arange(100), per_class)
    coarse = fine % 20  # a stand-in coarse map: superclass = fine mod 20
    for k, name in enumerate(("train", "test")):
        data = np.random.default_rng(k).integers(0, 256, (len(fine), 3072), dtype=np.uint8)
        content = {"fine_labels": fine.tolist(), "coarse_labels": coarse.tolist(), "data": data}
        _dump(folder / name, content)
    meta = {"fine_label_names": [f"f{i}" for i in range(100)], "coarse_label_names": []}
    _dump(folder / "meta", meta)
