"""Datasets for pretraining and evaluation, registered by name in :data:`DATASETS`.

Item contract: every dataset is a ``torch.utils.data.Dataset`` whose items are
``(image, label)``:

- ``image``: a ``torch.uint8`` tensor ``[3, H, W]``, RGB (grayscale images are
  repeated to three channels, alpha is dropped); sizes may differ between items.
- ``label``: an ``int`` class index, or ``-1`` for unlabeled items.

Every dataset also has ``num_classes`` (0 when unlabeled), ``classes`` (names,
index = label; empty when unknown) and ``targets`` (all labels, a long tensor).
File-based datasets accept ``skip_corrupt`` and then count skipped files in
``num_skipped``. Missing or unreadable data raises
:class:`~moeheads.errors.DataError` naming the dataset, the path, the expected
layout and how to obtain the files.

Example:
    >>> from moeheads.data import DATASETS, create_dataset
    >>> "stl10" in DATASETS
    True
    >>> image, label = create_dataset("synthetic_shapes", size=64, length=10)[3]
    >>> tuple(image.shape), label
    ((3, 64, 64), 3)
"""

from moeheads.data import (
    cifar,
    fashion_mnist,
    fewshot,
    folder,
    imagenet100,
    mit67,
    shapes_boxes,
    stl10,
    synthetic,
    transfer,
    voc,
)
from moeheads.data.base import ConcatImages, ImageDataset, SubsetImages
from moeheads.data.catalog import DATASETS, create_dataset
from moeheads.data.fewshot import FEWSHOT_SUITE
from moeheads.data.folder import ImageFiles
from moeheads.data.synthetic import FACTOR_NAMES, SyntheticShapes
from moeheads.data.transfer import TRANSFER_METRICS, TRANSFER_SUITE, transfer_metric

__all__ = [
    "DATASETS",
    "FACTOR_NAMES",
    "FEWSHOT_SUITE",
    "TRANSFER_METRICS",
    "TRANSFER_SUITE",
    "ConcatImages",
    "ImageDataset",
    "ImageFiles",
    "SubsetImages",
    "SyntheticShapes",
    "cifar",
    "create_dataset",
    "fashion_mnist",
    "fewshot",
    "folder",
    "imagenet100",
    "mit67",
    "shapes_boxes",
    "stl10",
    "synthetic",
    "transfer",
    "transfer_metric",
    "voc",
]
