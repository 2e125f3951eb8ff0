"""ImageNet-100: the ImageNet classes of the CMC 100-class list, read from an ImageNet tree."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from moeheads.data.base import missing_data
from moeheads.data.catalog import DATASETS
from moeheads.data.folder import ImageFiles, no_download, scan_class_folders
from moeheads.errors import DataError

LAYOUT = "<root>/{train,val}/<wnid>/*.JPEG (ImageNet with val images sorted into class folders)"
OBTAIN = "download ILSVRC2012 from https://image-net.org and sort val into class folders"


def imagenet100_classes() -> list[str]:
    """The 100 WordNet ids of ImageNet-100 (the CMC list), in label order."""
    text = resources.files("moeheads.data").joinpath("imagenet100_classes.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


@DATASETS.register("imagenet100")
def imagenet100(
    root: Path,
    split: Literal["train", "val"] = "train",
    download: bool = False,
    skip_corrupt: bool = False,
) -> ImageFiles:
    """ImageNet-100: an ImageNet train/val tree filtered to the standard 100-class list.

    Args:
        root: ImageNet (or ImageNet-100) root holding ``train/`` and ``val/``.
        split: ``"train"`` or ``"val"``.
        download: Not supported: ImageNet needs a manual download (raises DataError).
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """
    if download:
        raise no_download("imagenet100", OBTAIN)
    directory = Path(root) / split
    if not directory.is_dir():
        raise missing_data("imagenet100", directory, LAYOUT, OBTAIN)
    classes = imagenet100_classes()
    absent = [wnid for wnid in classes if not (directory / wnid).is_dir()]
    if absent:
        raise DataError(
            f"imagenet100: {len(absent)} of the 100 class folders are missing in {directory} "
            f"(first: {', '.join(absent[:3])}); expected {LAYOUT}"
        )
    paths, targets, _ = scan_class_folders(directory, classes)
    return ImageFiles(paths, targets, classes, name="imagenet100", skip_corrupt=skip_corrupt)
