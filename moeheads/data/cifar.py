"""CIFAR-10 and CIFAR-100 in torchvision's python-pickle layout."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np

from moeheads._lazy import lazy_import
from moeheads.data.arrays import ArrayImages
from moeheads.data.base import ImageDataset, missing_data
from moeheads.data.catalog import DATASETS
from moeheads.data.download import fetch_archive
from moeheads.data.splits import TransferSplit, transfer_split
from moeheads.errors import DataError
from moeheads.registry import options_from_signature

_FORMATS = {
    "cifar10": ("CIFAR10", "batches.meta", "label_names", "labels"),
    "cifar100": ("CIFAR100", "meta", "fine_label_names", "fine_labels"),
}


def _source(name: str) -> Any:
    """torchvision's dataset class (its URL, folder and file lists), imported on first use."""
    return getattr(lazy_import("torchvision.datasets"), _FORMATS[name][0])


def _unpickle(name: str, path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return pickle.load(file, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise DataError(f"{name}: cannot read {path}: {error}") from error


def cifar_folder(name: Literal["cifar10", "cifar100"], root: Path, download: bool) -> Path:
    """The ``cifar-*-py*`` folder under ``root``, downloaded first if asked and missing."""
    source = _source(name)
    folder = Path(root) / source.base_folder
    if download and not (folder / _FORMATS[name][1]).is_file():
        fetch_archive(name, source.url, Path(root), source.filename, source.tgz_md5)
    if not folder.is_dir():
        layout = f"<root>/{source.base_folder}/ with the python pickles ({_FORMATS[name][1]}, ...)"
        raise missing_data(name, folder, layout, f"use download: true or fetch {source.url}")
    return folder


def read_cifar(
    name: Literal["cifar10", "cifar100"], folder: Path, official: Literal["train", "test"]
) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """Read one official split: images ``[N, 3, 32, 32]``, label arrays by key, class names."""
    _, meta_file, names_key, _ = _FORMATS[name]
    source = _source(name)
    files = source.train_list if official == "train" else source.test_list
    batches = []
    for file_name, _ in files:
        path = folder / file_name
        if not path.is_file():
            raise missing_data(name, path, f"the python pickle {file_name}", f"fetch {source.url}")
        batches.append(_unpickle(name, path))
    images = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32)
    keys = {k for k in ("labels", "fine_labels", "coarse_labels") if k in batches[0]}
    labels = {k: np.concatenate([np.asarray(b[k], dtype=np.int64) for b in batches]) for k in keys}
    classes = list(_unpickle(name, folder / meta_file)[names_key])
    return images, labels, classes


def _cifar(
    name: Literal["cifar10", "cifar100"],
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> ImageDataset:
    """CIFAR from torchvision's python pickles.

    Args:
        name: ``cifar10`` or ``cifar100``.
        root: The folder holding ``cifar-10-batches-py/`` or ``cifar-100-python/``.
        split: ``trainval`` (the official 50k training images), ``train`` / ``val``
            (a fixed-seed stratified carve-out of it) or ``test`` (10k).
        download: Download the archive when it is missing.
        val_fraction: Share of each class carved out of the training images as ``val``.
        split_seed: Seed of that carve-out.
    """
    folder = cifar_folder(name, root, download)
    label_key = _FORMATS[name][3]

    def load(official: str) -> ImageDataset:
        images, labels, classes = read_cifar(name, folder, official)  # type: ignore[arg-type]
        return ArrayImages(images, labels[label_key], "NCHW", classes, name=name)

    return transfer_split(
        split, load, official_val=False, val_fraction=val_fraction, seed=split_seed
    )


_DESCRIPTIONS = {
    "cifar10": "CIFAR-10 (32 px, 10 classes) from torchvision's python pickles",
    "cifar100": "CIFAR-100 (32 px, 100 fine classes) from torchvision's python pickles",
}

for _name, _description in _DESCRIPTIONS.items():
    DATASETS.register(
        _name,
        description=_description,
        options=options_from_signature(_cifar, f"{_name}_options", exclude=("name",)),
    )(functools.partial(_cifar, _name))
