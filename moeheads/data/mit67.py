"""MIT Indoor-67 from its ``Images/`` folder and ``TrainImages.txt`` / ``TestImages.txt`` lists."""

from __future__ import annotations

from pathlib import Path

from moeheads.data.base import ImageDataset, missing_data
from moeheads.data.catalog import DATASETS
from moeheads.data.folder import ImageFiles, no_download
from moeheads.data.splits import TransferSplit, transfer_split

LAYOUT = "<root>/mit67/{Images/<class>/<image>, TrainImages.txt, TestImages.txt}"
OBTAIN = "download Images and the split lists from https://web.mit.edu/torralba/www/indoor.html"
_FOLDERS = ("mit67", "indoorCVPR_09", ".")


def find_mit67(root: Path) -> Path:
    """The folder under ``root`` that holds ``Images/`` and the split lists."""
    for name in _FOLDERS:
        folder = Path(root) / name
        if (folder / "Images").is_dir() and (folder / "TrainImages.txt").is_file():
            return folder
    raise missing_data("mit67", Path(root) / "mit67", LAYOUT, OBTAIN)


def read_mit67(folder: Path, official: str, skip_corrupt: bool = False) -> ImageFiles:
    """One official split (``train`` or ``test``) of MIT67 from its split list."""
    images = folder / "Images"
    classes = sorted(p.name for p in images.iterdir() if p.is_dir())
    index = {name: i for i, name in enumerate(classes)}
    list_file = folder / ("TrainImages.txt" if official == "train" else "TestImages.txt")
    if not list_file.is_file():
        raise missing_data("mit67", list_file, LAYOUT, OBTAIN)
    entries = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    paths = [images / entry for entry in entries]
    targets = [index.get(entry.split("/")[0], -1) for entry in entries]
    unknown = [e for e, t in zip(entries, targets, strict=True) if t < 0]
    if unknown:
        raise missing_data("mit67", images / unknown[0].split("/")[0], LAYOUT, OBTAIN)
    return ImageFiles(paths, targets, classes, name="mit67", skip_corrupt=skip_corrupt)


@DATASETS.register("mit67")
def mit67(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
) -> ImageDataset:
    """MIT Indoor-67 (67 scene classes; official 80/20 images per class train/test lists).

    Args:
        root: The folder holding ``mit67/`` (or ``indoorCVPR_09/``, or the files directly).
        split: ``trainval`` (TrainImages.txt), ``train`` / ``val`` (fixed-seed carve-out), ``test``.
        download: Not supported (raises DataError).
        val_fraction: Share of each class carved out of the training list as ``val``.
        split_seed: Seed of that carve-out.
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """
    if download:
        raise no_download("mit67", OBTAIN)
    folder = find_mit67(root)
    return transfer_split(
        split,
        lambda official: read_mit67(folder, official, skip_corrupt),
        official_val=False,
        val_fraction=val_fraction,
        seed=split_seed,
    )
