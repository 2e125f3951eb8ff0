"""The linear-evaluation transfer suite: eleven datasets with train / val / trainval / test.

Datasets with an official validation split (Flowers-102, FGVC Aircraft, DTD)
use it; for the others ``val`` is a fixed-seed stratified share of the official
training data (``val_fraction``, ``split_seed``), ``train`` the rest, and
``trainval`` all of it. Caltech-101 and SUN397 have no official train/test
split either: see their factories.

Every dataset takes the same options: ``root`` (the folder holding the dataset's own
folder), ``split`` (``train``, ``val``, ``trainval`` or ``test``), ``download``
(through torchvision, where a public source remains), ``val_fraction`` and
``split_seed`` (the stratified ``val`` carve-out; unused where the official val
split is used) and ``skip_corrupt`` (skip unreadable images, counted, instead of
raising); DTD and SUN397 also take ``partition``, Caltech-101 ``train_per_class``.
The datasets with an official train/test split are the rows of :data:`OFFICIAL_SPLITS`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import create_model

from moeheads._lazy import lazy_import
from moeheads.data.base import ImageDataset
from moeheads.data.catalog import DATASETS
from moeheads.data.folder import ImageFiles
from moeheads.data.splits import TransferSplit, stratified_split, transfer_split
from moeheads.data.torchvision_files import from_torchvision
from moeheads.registry import options_from_signature

tv = lazy_import("torchvision.datasets")

Metric = Literal["top1", "mean_per_class"]

TRANSFER_METRICS: dict[str, Metric] = {
    "cifar10": "top1",
    "cifar100": "top1",
    "food101": "top1",
    "mit67": "top1",
    "pets": "mean_per_class",
    "flowers102": "mean_per_class",
    "caltech101": "mean_per_class",
    "cars": "top1",
    "aircraft": "mean_per_class",
    "dtd": "top1",
    "sun397": "top1",
}
"""The accuracy each transfer dataset is reported with (the usual convention)."""

TRANSFER_SUITE: tuple[str, ...] = tuple(TRANSFER_METRICS)
"""Registered names of the transfer datasets, in reporting order."""


def transfer_metric(name: str) -> Metric:
    """``"top1"`` or ``"mean_per_class"``: how accuracy on transfer dataset ``name`` is reported."""
    return TRANSFER_METRICS[name]


@dataclass(frozen=True)
class TorchvisionSpec:
    """A transfer dataset that torchvision reads, with official train / test splits.

    Attributes:
        name: Registered name.
        description: One line for ``moeheads list datasets``.
        folder: The dataset's folder under ``root``.
        layout: The files expected there, for the missing-data message.
        obtain: How to get them, for the same message.
        open: ``open(root, split, download, **extra)`` -> the torchvision dataset.
        official_val: The dataset has an official ``val`` split (else it is carved out).
        splits: Torchvision's split name for ``train`` / ``val`` / ``test`` where it differs.
        extra: Further options with their defaults (``{"partition": 1}``).
        num_classes: Number of classes, when torchvision does not list them.
    """

    name: str
    description: str
    folder: str
    layout: str
    obtain: str
    open: Callable[..., Any]
    official_val: bool = False
    splits: tuple[tuple[str, str], ...] = ()
    extra: tuple[tuple[str, int], ...] = ()
    num_classes: int | None = None


OFFICIAL_SPLITS: tuple[TorchvisionSpec, ...] = (
    TorchvisionSpec(
        "food101", "Food-101 (101 classes, 750 train / 250 test images each) via torchvision",
        "food-101", "<root>/food-101/{images/<class>/*.jpg, meta/{train,test}.json}",
        "use download: true (torchvision) or fetch food-101.tar.gz from ETH Zurich",
        lambda root, split, download: tv.Food101(root, split=split, download=download),
    ),
    TorchvisionSpec(
        "pets", "Oxford-IIIT Pets (37 breeds; official trainval / test lists) via torchvision",
        "oxford-iiit-pet", "<root>/oxford-iiit-pet/{images/*.jpg, annotations/{trainval,test}.txt}",
        "use download: true (torchvision) or fetch images.tar.gz and annotations.tar.gz",
        lambda root, split, download: tv.OxfordIIITPet(root, split=split, download=download),
        splits=(("train", "trainval"),),
    ),
    TorchvisionSpec(
        "flowers102", "Oxford Flowers-102 (102 classes; official train / val / test) via "
        "torchvision", "flowers-102",
        "<root>/flowers-102/{jpg/image_*.jpg, imagelabels.mat, setid.mat}",
        "use download: true (torchvision) or fetch them from the VGG Flowers page",
        lambda root, split, download: tv.Flowers102(root, split=split, download=download),
        official_val=True, num_classes=102,
    ),
    TorchvisionSpec(
        "cars", "Stanford Cars (196 classes; official train / test) via torchvision",
        "stanford_cars",
        "<root>/stanford_cars/{cars_train, cars_test, devkit/, cars_test_annos_withlabels.mat}",
        "fetch a mirror of the Stanford Cars release (e.g. on Kaggle) and unpack it there",
        lambda root, split, download: tv.StanfordCars(root, split=split, download=download),
    ),
    TorchvisionSpec(
        "aircraft", "FGVC Aircraft (100 variants; official train / val / test) via torchvision",
        "fgvc-aircraft-2013b",
        "<root>/fgvc-aircraft-2013b/data/{images/, variants.txt, images_variant_*.txt}",
        "use download: true (torchvision) or fetch fgvc-aircraft-2013b.tar.gz from VGG",
        lambda root, split, download: tv.FGVCAircraft(root, split=split, download=download),
        official_val=True,
    ),
    TorchvisionSpec(
        "dtd", "Describable Textures (47 classes; official train / val / test partitions) via "
        "torchvision", "dtd",
        "<root>/dtd/dtd/{images/<class>/*.jpg, labels/{train,val,test}<N>.txt}",
        "use download: true (torchvision) or fetch dtd-r1.0.1.tar.gz from VGG",
        lambda root, split, download, partition: tv.DTD(
            root, split=split, partition=partition, download=download),
        official_val=True, extra=(("partition", 1),),
    ),
)
"""The transfer datasets with official splits, registered in a loop below."""


#: Opens a transfer dataset's files: ``load(official)`` gives its ``train`` / ``test``
#: (and, with an official val split, ``val``) part.
SplitLoader = Callable[[str], ImageDataset]


def _transfer_options(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
) -> None:
    """The options every transfer dataset takes (see the module docstring)."""


def register_transfer(
    name: str, description: str, official_val: bool = False, **extra: int
) -> Callable[[Callable[..., SplitLoader]], Callable[..., SplitLoader]]:
    """Register a transfer dataset from a function that opens its official parts.

    The decorated ``source(root, *, download, skip_corrupt, split_seed, **extra)``
    returns a :data:`SplitLoader`; the registered factory takes the options of every
    transfer dataset plus ``extra`` (name -> default) and carves out ``val`` with
    :func:`~moeheads.data.splits.transfer_split`.
    """
    options = create_model(
        f"{name}_options",
        __base__=options_from_signature(_transfer_options, f"{name}_base_options"),
        **{key: (type(default), default) for key, default in extra.items()},
    )

    def decorator(source: Callable[..., SplitLoader]) -> Callable[..., SplitLoader]:
        def factory(root: Path, split: TransferSplit = "train", download: bool = False,
                    val_fraction: float = 0.1, split_seed: int = 0, skip_corrupt: bool = False,
                    **more: Any) -> ImageDataset:
            load = source(Path(root), download=download, skip_corrupt=skip_corrupt,
                          split_seed=split_seed, **more)
            return transfer_split(split, load, official_val=official_val,
                                  val_fraction=val_fraction, seed=split_seed)

        DATASETS.register(name, description=description, options=options)(factory)
        return source

    return decorator


def _torchvision_source(
    spec: TorchvisionSpec, root: Path, *, download: bool, skip_corrupt: bool, split_seed: int,
    **extra: Any,
) -> SplitLoader:
    names = dict(spec.splits)
    counts = {} if spec.num_classes is None else {"num_classes": spec.num_classes}

    def load(official: str) -> ImageFiles:
        return from_torchvision(
            spec.name,
            lambda: spec.open(str(root), names.get(official, official), download, **extra),
            root / spec.folder, spec.layout, spec.obtain,
            download=download, skip_corrupt=skip_corrupt, **counts,
        )

    return load


for _spec in OFFICIAL_SPLITS:
    register_transfer(_spec.name, _spec.description, _spec.official_val, **dict(_spec.extra))(
        functools.partial(_torchvision_source, _spec)
    )


@register_transfer(
    "caltech101",
    "Caltech-101 (101 classes, no background class) via torchvision; 30 train images per class",
    train_per_class=30,
)
def _caltech101(
    root: Path, *, download: bool, skip_corrupt: bool, split_seed: int, train_per_class: int
) -> SplitLoader:
    """Caltech-101 has no official split: ``trainval`` is ``train_per_class`` images of
    each class drawn with ``split_seed``, ``test`` the rest; ``val`` is ``val_fraction``
    of trainval. Layout: ``<root>/caltech101/101_ObjectCategories/<class>/*.jpg``."""
    full = from_torchvision(
        "caltech101",
        lambda: tv.Caltech101(str(root), target_type="category", download=download),
        root / "caltech101",
        "<root>/caltech101/101_ObjectCategories/<class>/image_*.jpg",
        "use download: true (torchvision) or fetch caltech-101.zip from data.caltech.edu",
        download=download,
        skip_corrupt=skip_corrupt,
    )
    test, train = stratified_split(full.targets, count=train_per_class, seed=split_seed)
    return lambda official: full.subset(train if official == "train" else test)


@register_transfer(
    "sun397",
    "SUN397 (397 scene classes) via torchvision, split by the official partition lists",
    partition=1,
)
def _sun397(
    root: Path, *, download: bool, skip_corrupt: bool, split_seed: int, partition: int
) -> SplitLoader:
    """With ``<root>/SUN397/Training_<NN>.txt`` and ``Testing_<NN>.txt`` (from
    Partitions.zip; 50 + 50 images per class, ``<NN>`` the ``partition``) those lists set
    trainval and test; without them a fixed-seed stratified half of each class is the
    test split. Layout: ``<root>/SUN397/{ClassName.txt, <letter>/<class>/sun_*.jpg}``;
    the download (37 GB) does not include the partition lists."""
    data_dir = root / "SUN397"
    full = from_torchvision(
        "sun397",
        lambda: tv.SUN397(str(root), download=download),
        data_dir,
        "<root>/SUN397/{ClassName.txt, <letter>/<class>/sun_*.jpg}",
        "use download: true (torchvision) or fetch SUN397.tar.gz from the SUN database page",
        download=download,
        skip_corrupt=skip_corrupt,
    )
    lists = [data_dir / f"{kind}_{partition:02d}.txt" for kind in ("Training", "Testing")]
    if all(path.is_file() for path in lists):
        position = {path: i for i, path in enumerate(full.paths)}
        chosen = []
        for path in lists:
            entries = [line.strip().lstrip("/") for line in path.read_text().splitlines()]
            chosen.append([position[data_dir / e] for e in entries if data_dir / e in position])
        train, test = chosen
    else:
        train, test = stratified_split(full.targets, fraction=0.5, seed=split_seed)
    return lambda official: full.subset(train if official == "train" else test)
