"""The few-shot suite: CUB-200, FC100 and Plant Disease, split by class.

Few-shot evaluation samples episodes from the classes of one split; the splits
are class-disjoint and labels are renumbered ``0..k-1`` within each split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from moeheads.data.arrays import ArrayImages
from moeheads.data.base import ConcatImages, ImageDataset, missing_data
from moeheads.data.catalog import DATASETS
from moeheads.data.cifar import cifar_folder, read_cifar
from moeheads.data.folder import image_folder, no_download
from moeheads.data.splits import select_classes
from moeheads.errors import DataError

FEWSHOT_SUITE: tuple[str, ...] = ("cub200", "fc100", "plant_disease")
"""Registered names of the few-shot datasets."""

FewShotSplit = Literal["train", "val", "test"]

PAPER_POOLS: dict[str, str] = {"cub200": "all", "fc100": "test", "plant_disease": "all"}
"""The split each few-shot dataset draws episodes from in AugSelf's evaluation (which STAR
uses): CUB-200 and Plant Disease pool all their classes (their train and test folders
together), FC100 uses its 20 test classes."""

FC100_SUPERCLASSES: dict[str, tuple[int, ...]] = {
    "train": (1, 2, 3, 4, 5, 6, 9, 10, 15, 17, 18, 19),
    "val": (8, 11, 13, 16),
    "test": (0, 7, 12, 14),
}
"""CIFAR-100 superclasses of each FC100 split (Oreshkin et al., 2018): 60 / 20 / 20 classes."""

CUB_LAYOUT = "<root>/CUB_200_2011/images/<NNN.class>/*.jpg"
CUB_OBTAIN = "download CUB_200_2011.tgz from the Caltech-UCSD Birds page and unpack it there"
PLANT_LAYOUT = "<root>/plant_disease/[train/]<class>/*.jpg"
PLANT_OBTAIN = "download the PlantVillage / New Plant Diseases images (e.g. from Kaggle)"


def cub_split_classes(split: FewShotSplit, num_classes: int = 200) -> list[int]:
    """CUB class indices of a split (Chen et al., 2019): even train, 1 mod 4 val, 3 mod 4 test."""
    keep = {"train": (0, 2), "val": (1,), "test": (3,)}[split]
    return [i for i in range(num_classes) if i % 4 in keep]


@DATASETS.register("cub200")
def cub200(
    root: Path,
    split: FewShotSplit | Literal["all"] = "test",
    download: bool = False,
    skip_corrupt: bool = False,
) -> ImageDataset:
    """CUB-200-2011 birds, class-split 100 / 50 / 50 for few-shot evaluation.

    Args:
        root: The folder holding ``CUB_200_2011/`` (or ``CUB_200_2011`` itself).
        split: ``train`` (100 classes), ``val`` (50), ``test`` (50) or ``all`` (all 200
            classes, every image: AugSelf's few-shot pool).
        download: Not supported (raises DataError).
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """
    if download:
        raise no_download("cub200", CUB_OBTAIN)
    root = Path(root)
    folder = root if root.name == "CUB_200_2011" else root / "CUB_200_2011"
    full = image_folder(folder / "images", "cub200", CUB_OBTAIN, skip_corrupt, False, CUB_LAYOUT)
    if split == "all":
        return full
    return select_classes(full, cub_split_classes(split, full.num_classes))


@DATASETS.register("fc100")
def fc100(
    root: Path,
    split: FewShotSplit = "test",
    download: bool = False,
) -> ImageDataset:
    """FC100: CIFAR-100 split by superclass into 60 / 20 / 20 classes of 600 images.

    Built from CIFAR-100's python pickles (its train and test images together).

    Args:
        root: The folder holding ``cifar-100-python/``.
        split: ``train``, ``val`` or ``test``.
        download: Download CIFAR-100 through torchvision when missing.
    """
    folder = cifar_folder("cifar100", root, download)
    parts = [read_cifar("cifar100", folder, official) for official in ("train", "test")]
    images = np.concatenate([p[0] for p in parts])
    fine = np.concatenate([p[1]["fine_labels"] for p in parts])
    coarse = np.concatenate([p[1]["coarse_labels"] for p in parts])
    superclasses = FC100_SUPERCLASSES[split]
    class_ids = sorted({int(f) for f, c in zip(fine, coarse, strict=True) if c in superclasses})
    full = ArrayImages(images, fine, "NCHW", parts[0][2], name="fc100")
    return select_classes(full, class_ids)


@DATASETS.register("plant_disease")
def plant_disease(
    root: Path,
    split: Literal["test", "all"] = "test",
    download: bool = False,
    skip_corrupt: bool = False,
) -> ImageDataset:
    """Plant Disease (PlantVillage, 38 classes), all classes novel as in cross-domain few-shot.

    Args:
        root: The folder holding ``plant_disease/`` (class folders, or a ``train/`` folder of them).
        split: ``test``: the class folders (of ``train/`` when there is one); ``all``: the
            ``train/`` and ``test/`` folders pooled (AugSelf's few-shot pool).
        download: Not supported (raises DataError).
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """
    if download:
        raise no_download("plant_disease", PLANT_OBTAIN)
    folder = Path(root) / "plant_disease"
    parts = [folder / sub for sub in ("train", "test") if (folder / sub).is_dir()]
    if split == "all" and len(parts) == 2:
        pooled = [image_folder(p, "plant_disease", PLANT_OBTAIN, skip_corrupt, False,
                               PLANT_LAYOUT) for p in parts]
        if pooled[0].classes != pooled[1].classes:
            raise DataError(f"plant_disease: {parts[0]} and {parts[1]} hold different classes")
        return ConcatImages(pooled)
    if (folder / "train").is_dir():
        folder = folder / "train"
    if not folder.is_dir():
        raise missing_data("plant_disease", folder, PLANT_LAYOUT, PLANT_OBTAIN)
    return image_folder(folder, "plant_disease", PLANT_OBTAIN, skip_corrupt, False, PLANT_LAYOUT)
