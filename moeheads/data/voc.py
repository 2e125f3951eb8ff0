"""PASCAL VOC detection data (``voc``): images with boxes, classes and *difficult* flags.

Layout (as the official tar files unpack)::

    <root>/VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main/{trainval,test}.txt}
    <root>/VOCdevkit/VOC2012/...

Items are ``(image, target)``: ``image`` a uint8 ``[3, H, W]`` tensor, ``target`` a
dict with ``boxes`` (float ``[N, 4]``, ``x1, y1, x2, y2`` in 0-based pixels),
``labels`` (long ``[N]``, index into :data:`VOC_CLASSES`) and ``difficult`` (bool
``[N]``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from moeheads.data.base import missing_data
from moeheads.data.catalog import DATASETS
from moeheads.data.images import read_image
from moeheads.errors import DataError

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
VOC_LAYOUT = ("<root>/VOCdevkit/VOC<year>/{JPEGImages/<id>.jpg, Annotations/<id>.xml, "
              "ImageSets/Main/<split>.txt}")
VOC_SOURCE = ("download VOCtrainval_06-Nov-2007.tar, VOCtest_06-Nov-2007.tar and "
              "VOCtrainval_11-May-2012.tar from http://host.robots.ox.ac.uk/pascal/VOC/ "
              "and unpack them in <root>")


def parse_annotation(path: Path, classes: Sequence[str] = VOC_CLASSES) -> dict[str, Tensor]:
    """Boxes, labels and difficult flags of one VOC XML file.

    Raises:
        DataError: The file is missing, not XML, or names an unknown class or bad box.
    """
    try:
        objects = ET.parse(path).getroot().findall("object")
        boxes, labels, difficult = [], [], []
        for obj in objects:
            box = obj.find("bndbox")
            x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append([x1 - 1, y1 - 1, x2, y2])  # 1-based inclusive to 0-based
            labels.append(classes.index(obj.findtext("name", "").strip()))
            difficult.append(obj.findtext("difficult", "0").strip() == "1")
    except (OSError, ET.ParseError, AttributeError, TypeError, ValueError) as error:
        raise DataError(f"voc: cannot read annotation {path}: {error}; expected a VOC XML "
                        f"file with <object><name>, <bndbox>") from None
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.long),
            "difficult": torch.tensor(difficult, dtype=torch.bool)}


class VOCDetection(Dataset[tuple[Tensor, dict[str, Tensor]]]):
    """Images of one or more VOC year/split lists, with their annotations.

    Args:
        folders: Per item, the ``VOC<year>`` folder holding it.
        ids: Per item, the image id (file stem).
        classes: Class names, index = label.
    """

    def __init__(self, folders: Sequence[Path], ids: Sequence[str],
                 classes: Sequence[str] = VOC_CLASSES) -> None:
        self.folders = list(folders)
        self.ids = list(ids)
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.name = "voc"

    def __len__(self) -> int:
        return len(self.ids)

    def target(self, index: int) -> dict[str, Tensor]:
        """The annotation of item ``index``."""
        folder, stem = self.folders[index], self.ids[index]
        return parse_annotation(folder / "Annotations" / f"{stem}.xml", self.classes)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        folder, stem = self.folders[index], self.ids[index]
        try:
            image = read_image(folder / "JPEGImages" / f"{stem}.jpg")
        except DataError as error:
            raise DataError(f"voc: {error}") from None
        return image, self.target(index)


def _split_ids(root: Path, year: str, split: str) -> tuple[Path, list[str]]:
    folder = root / "VOCdevkit" / f"VOC{year}"
    listing = folder / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        raise missing_data(f"voc (VOC{year} {split})", listing, VOC_LAYOUT, VOC_SOURCE)
    ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
    return folder, ids


@DATASETS.register("voc")
def voc(
    root: Path,
    split: Literal["trainval", "train", "val", "test"] = "trainval",
    download: bool = False,
    years: list[str] | None = None,
) -> Any:
    """PASCAL VOC detection (20 classes): VOC07+12 ``trainval`` or VOC07 ``test`` by default.

    Args:
        root: The folder holding ``VOCdevkit``.
        split: The ``ImageSets/Main`` list to read.
        download: Unsupported (the files need a manual download).
        years: The VOC years joined; ``["2007", "2012"]`` for trainval/train/val,
            ``["2007"]`` for test.
    """
    if download:
        raise DataError(f"voc: download is not supported; {VOC_SOURCE}")
    chosen = years or (["2007"] if split == "test" else ["2007", "2012"])
    folders: list[Path] = []
    ids: list[str] = []
    for year in chosen:
        folder, stems = _split_ids(Path(root), str(year), split)
        folders += [folder] * len(stems)
        ids += stems
    return VOCDetection(folders, ids)
