"""Datasets of image files: ImageFolder trees, flat folders and explicit file lists."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from moeheads.data.base import ImageDataset, missing_data
from moeheads.data.catalog import DATASETS
from moeheads.data.images import is_image_file, read_image
from moeheads.errors import DataError

FOLDER_LAYOUT = "<dir>/<class>/<image> (ImageFolder) or <dir>/<image> (flat, unlabeled)"


class ImageFiles(ImageDataset):
    """Images read from files, one label per file.

    Args:
        paths: One image file per item.
        targets: One label per item (-1 for unlabeled).
        classes: Class names, index = label.
        num_classes: Number of classes when ``classes`` is not given.
        name: Dataset name for messages.
        skip_corrupt: Skip unreadable files (counted in ``num_skipped``) instead of raising.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        targets: Sequence[int],
        classes: Sequence[str] = (),
        num_classes: int | None = None,
        name: str = "folder",
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(list(targets), classes, num_classes, name, skip_corrupt)
        if len(paths) != len(self.targets):
            raise ValueError(f"{name}: {len(paths)} files but {len(self.targets)} labels")
        self.paths = [Path(p) for p in paths]

    def image(self, index: int) -> Tensor:
        """Decode file ``index``; raises DataError naming the file if it is unreadable."""
        try:
            return read_image(self.paths[index])
        except DataError as error:
            raise DataError(f"{self.name}: {error}") from error.__cause__

    def source(self, index: int) -> str:
        """The path of file ``index``."""
        return str(self.paths[index])

    def encoded_file(self, index: int) -> Path | None:
        """The path of file ``index`` (its bytes are the encoded image)."""
        return self.paths[index]


def _visible_dirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(directory: Path, recursive: bool) -> list[Path]:
    found = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(p for p in found if is_image_file(p) and p.is_file())


def scan_class_folders(
    directory: Path, classes: Sequence[str] | None = None
) -> tuple[list[Path], list[int], list[str]]:
    """Scan an ImageFolder tree: one sub-folder per class, images anywhere below it.

    Args:
        directory: The tree's root.
        classes: The class folders to use, in label order; all sub-folders (sorted) when omitted.

    Returns:
        Image paths, their labels and the class names.
    """
    names = list(classes) if classes is not None else [p.name for p in _visible_dirs(directory)]
    paths: list[Path] = []
    targets: list[int] = []
    for label, class_name in enumerate(names):
        files = _images_under(directory / class_name, recursive=True)
        paths += files
        targets += [label] * len(files)
    return paths, targets, names


def image_folder(
    directory: Path,
    name: str,
    obtain: str,
    skip_corrupt: bool = False,
    allow_flat: bool = True,
    layout: str | None = None,
) -> ImageFiles:
    """An :class:`ImageFiles` from an ImageFolder tree, or from a flat folder of unlabeled images.

    Class sub-folders win: when ``directory`` has sub-folders, each is a class and
    images directly inside ``directory`` are ignored. Otherwise (and if
    ``allow_flat``) its images are unlabeled items (label -1).

    Raises:
        DataError: When the folder is missing or holds no images.
    """
    if layout is None:
        layout = FOLDER_LAYOUT if allow_flat else "<dir>/<class>/<image> (ImageFolder)"
    if not directory.is_dir():
        raise missing_data(name, directory, layout, obtain)
    if _visible_dirs(directory):
        paths, targets, classes = scan_class_folders(directory)
        dataset = ImageFiles(paths, targets, classes, name=name, skip_corrupt=skip_corrupt)
    elif allow_flat:
        paths = _images_under(directory, recursive=False)
        dataset = ImageFiles(paths, [-1] * len(paths), name=name, skip_corrupt=skip_corrupt)
    else:
        dataset = ImageFiles([], [], name=name)
    if len(dataset) == 0:
        raise missing_data(name, directory, layout, obtain)
    return dataset


def no_download(name: str, obtain: str) -> DataError:
    """The error for ``download=True`` on a dataset that has no automatic download."""
    return DataError(f"{name}: automatic download is not available; {obtain}")


@DATASETS.register("folder")
def folder(
    root: Path,
    split: str | None = None,
    download: bool = False,
    skip_corrupt: bool = False,
) -> ImageFiles:
    """Any ImageFolder tree (one sub-folder per class) or a flat folder of unlabeled images.

    Args:
        root: The folder.
        split: A sub-folder of ``root`` to use (e.g. ``"train"``); ``root`` itself when omitted.
        download: Not supported (raises DataError).
        skip_corrupt: Skip unreadable images (counted) instead of raising.
    """
    obtain = "put your images there"
    if download:
        raise no_download("folder", obtain)
    directory = Path(root) / split if split else Path(root)
    return image_folder(directory, "folder", obtain, skip_corrupt)
