"""The linear-evaluation transfer suite: eleven datasets with train / val / trainval / test.

Datasets with an official validation split (Flowers-102, FGVC Aircraft, DTD)
use it; for the others ``val`` is a fixed-seed stratified share of the official
training data (``val_fraction``, ``split_seed``), ``train`` the rest, and
``trainval`` all of it. Caltech-101 and SUN397 have no official train/test
split either: see their factories.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from torchvision import datasets as tv

from moeheads.data.base import ImageDataset
from moeheads.data.catalog import DATASETS
from moeheads.data.folder import ImageFiles
from moeheads.data.splits import TransferSplit, stratified_split, transfer_split
from moeheads.data.torchvision_files import from_torchvision

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


def _split(
    split: TransferSplit,
    load: Callable[[str], ImageDataset],
    official_val: bool,
    val_fraction: float,
    split_seed: int,
) -> ImageDataset:
    return transfer_split(
        split, load, official_val=official_val, val_fraction=val_fraction, seed=split_seed
    )


@DATASETS.register("food101")
def food101(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
) -> ImageDataset:
    """Food-101 (101 classes, 750 train / 250 test images each) via torchvision.

    Layout: ``<root>/food-101/{images/<class>/*.jpg, meta/{train,test}.json}``.

    Args:
        root: The folder holding ``food-101/``.
        split: ``trainval`` (official train), ``train`` / ``val`` (carve-out) or ``test``.
        download: Download through torchvision (5 GB).
        val_fraction: Share of each class carved out of the official train split.
        split_seed: Seed of that carve-out.
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """

    def load(official: str) -> ImageFiles:
        return from_torchvision(
            "food101",
            lambda: tv.Food101(str(root), split=official, download=download),
            Path(root) / "food-101",
            "<root>/food-101/{images/<class>/*.jpg, meta/{train,test}.json}",
            "use download: true (torchvision) or fetch food-101.tar.gz from ETH Zurich",
            download=download,
            skip_corrupt=skip_corrupt,
        )

    return _split(split, load, False, val_fraction, split_seed)


@DATASETS.register("pets")
def pets(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
) -> ImageDataset:
    """Oxford-IIIT Pets (37 breeds; official trainval / test lists) via torchvision.

    Layout: ``<root>/oxford-iiit-pet/{images/*.jpg, annotations/{trainval,test}.txt}``.

    Args:
        root: The folder holding ``oxford-iiit-pet/``.
        split: ``trainval`` (official trainval), ``train`` / ``val`` (carve-out) or ``test``.
        download: Download through torchvision.
        val_fraction: Share of each class carved out of trainval as ``val``.
        split_seed: Seed of that carve-out.
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """

    def load(official: str) -> ImageFiles:
        name = "trainval" if official == "train" else official
        return from_torchvision(
            "pets",
            lambda: tv.OxfordIIITPet(str(root), split=name, download=download),
            Path(root) / "oxford-iiit-pet",
            "<root>/oxford-iiit-pet/{images/*.jpg, annotations/{trainval,test}.txt}",
            "use download: true (torchvision) or fetch images.tar.gz and annotations.tar.gz",
            download=download,
            skip_corrupt=skip_corrupt,
        )

    return _split(split, load, False, val_fraction, split_seed)


@DATASETS.register("flowers102")
def flowers102(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
) -> ImageDataset:
    """Oxford Flowers-102 (102 classes; official train / val / test) via torchvision.

    Layout: ``<root>/flowers-102/{jpg/image_*.jpg, imagelabels.mat, setid.mat}``;
    reading the ``.mat`` files needs scipy.

    Args:
        root: The folder holding ``flowers-102/``.
        split: ``train``, ``val``, ``trainval`` (both) or ``test``, all official.
        download: Download through torchvision.
        val_fraction: Unused (the official val split is used).
        split_seed: Unused.
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """

    def load(official: str) -> ImageFiles:
        return from_torchvision(
            "flowers102",
            lambda: tv.Flowers102(str(root), split=official, download=download),
            Path(root) / "flowers-102",
            "<root>/flowers-102/{jpg/image_*.jpg, imagelabels.mat, setid.mat}",
            "use download: true (torchvision) or fetch them from the VGG Flowers page",
            download=download,
            skip_corrupt=skip_corrupt,
            num_classes=102,
        )

    return _split(split, load, True, val_fraction, split_seed)


@DATASETS.register("caltech101")
def caltech101(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
    train_per_class: int = 30,
) -> ImageDataset:
    """Caltech-101 (101 classes, no background class) via torchvision; 30 train images per class.

    Caltech-101 has no official split: ``trainval`` is ``train_per_class`` images of
    each class drawn with ``split_seed``, ``test`` the rest; ``val`` is
    ``val_fraction`` of trainval. Layout: ``<root>/caltech101/101_ObjectCategories/<class>/*.jpg``.

    Args:
        root: The folder holding ``caltech101/``.
        split: ``trainval``, ``train`` / ``val`` (carve-out) or ``test``.
        download: Download through torchvision.
        val_fraction: Share of each class carved out of trainval as ``val``.
        split_seed: Seed of the train/test draw and of the carve-out.
        skip_corrupt: Skip unreadable images (counted) instead of raising.
        train_per_class: Training images per class.
    """
    full = from_torchvision(
        "caltech101",
        lambda: tv.Caltech101(str(root), target_type="category", download=download),
        Path(root) / "caltech101",
        "<root>/caltech101/101_ObjectCategories/<class>/image_*.jpg",
        "use download: true (torchvision) or fetch caltech-101.zip from data.caltech.edu",
        download=download,
        skip_corrupt=skip_corrupt,
    )
    test, train = stratified_split(full.targets, count=train_per_class, seed=split_seed)

    def load(official: str) -> ImageDataset:
        return full.subset(train if official == "train" else test)

    return _split(split, load, False, val_fraction, split_seed)


@DATASETS.register("cars")
def cars(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
) -> ImageDataset:
    """Stanford Cars (196 classes; official train / test) via torchvision.

    Layout: ``<root>/stanford_cars/{cars_train/, cars_test/, devkit/{cars_meta.mat,
    cars_train_annos.mat}, cars_test_annos_withlabels.mat}``; needs scipy. The
    original download site is gone, so torchvision cannot download it.

    Args:
        root: The folder holding ``stanford_cars/``.
        split: ``trainval`` (official train), ``train`` / ``val`` (carve-out) or ``test``.
        download: Ask torchvision to download (fails: no public source remains).
        val_fraction: Share of each class carved out of the official train split.
        split_seed: Seed of that carve-out.
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """

    def load(official: str) -> ImageFiles:
        return from_torchvision(
            "cars",
            lambda: tv.StanfordCars(str(root), split=official, download=download),
            Path(root) / "stanford_cars",
            "<root>/stanford_cars/{cars_train, cars_test, devkit/, cars_test_annos_withlabels.mat}",
            "fetch a mirror of the Stanford Cars release (e.g. on Kaggle) and unpack it there",
            download=download,
            skip_corrupt=skip_corrupt,
        )

    return _split(split, load, False, val_fraction, split_seed)


@DATASETS.register("aircraft")
def aircraft(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
) -> ImageDataset:
    """FGVC Aircraft (100 variants; official train / val / test) via torchvision.

    Layout: ``<root>/fgvc-aircraft-2013b/data/{images/*.jpg, variants.txt,
    images_variant_{train,val,test}.txt}``.

    Args:
        root: The folder holding ``fgvc-aircraft-2013b/``.
        split: ``train``, ``val``, ``trainval`` (both) or ``test``, all official.
        download: Download through torchvision.
        val_fraction: Unused (the official val split is used).
        split_seed: Unused.
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """

    def load(official: str) -> ImageFiles:
        return from_torchvision(
            "aircraft",
            lambda: tv.FGVCAircraft(str(root), split=official, download=download),
            Path(root) / "fgvc-aircraft-2013b",
            "<root>/fgvc-aircraft-2013b/data/{images/, variants.txt, images_variant_*.txt}",
            "use download: true (torchvision) or fetch fgvc-aircraft-2013b.tar.gz from VGG",
            download=download,
            skip_corrupt=skip_corrupt,
        )

    return _split(split, load, True, val_fraction, split_seed)


@DATASETS.register("dtd")
def dtd(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
    partition: int = 1,
) -> ImageDataset:
    """Describable Textures (47 classes; official train / val / test partitions) via torchvision.

    Layout: ``<root>/dtd/dtd/{images/<class>/*.jpg, labels/{train,val,test}<N>.txt}``.

    Args:
        root: The folder holding ``dtd/``.
        split: ``train``, ``val``, ``trainval`` (both) or ``test``, all official.
        download: Download through torchvision.
        val_fraction: Unused (the official val split is used).
        split_seed: Unused.
        skip_corrupt: Skip unreadable images (counted) instead of raising.
        partition: Which of the ten official partitions (1-10).
    """

    def load(official: str) -> ImageFiles:
        return from_torchvision(
            "dtd",
            lambda: tv.DTD(str(root), split=official, partition=partition, download=download),
            Path(root) / "dtd",
            "<root>/dtd/dtd/{images/<class>/*.jpg, labels/{train,val,test}<N>.txt}",
            "use download: true (torchvision) or fetch dtd-r1.0.1.tar.gz from VGG",
            download=download,
            skip_corrupt=skip_corrupt,
        )

    return _split(split, load, True, val_fraction, split_seed)


@DATASETS.register("sun397")
def sun397(
    root: Path,
    split: TransferSplit = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
    partition: int = 1,
) -> ImageDataset:
    """SUN397 (397 scene classes) via torchvision, split by the official partition lists.

    With ``<root>/SUN397/Training_<NN>.txt`` and ``Testing_<NN>.txt`` (from
    Partitions.zip; 50 + 50 images per class) those lists set trainval and test;
    without them a fixed-seed stratified half of each class is the test split.
    Layout: ``<root>/SUN397/{ClassName.txt, <letter>/<class>/sun_*.jpg}``.

    Args:
        root: The folder holding ``SUN397/``.
        split: ``trainval``, ``train`` / ``val`` (carve-out) or ``test``.
        download: Download through torchvision (37 GB; the partition lists are separate).
        val_fraction: Share of each class carved out of trainval as ``val``.
        split_seed: Seed of the carve-out (and of the fallback half split).
        skip_corrupt: Skip unreadable images (counted) instead of raising.
        partition: Which official partition list (1-10) to use.
    """
    data_dir = Path(root) / "SUN397"
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

    def load(official: str) -> ImageDataset:
        return full.subset(train if official == "train" else test)

    return _split(split, load, False, val_fraction, split_seed)
