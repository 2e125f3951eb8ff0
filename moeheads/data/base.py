"""The dataset base class shared by every moeheads dataset, with subsets and concatenation."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from moeheads.errors import DataError


class ImageDataset(Dataset[tuple[Tensor, int]]):
    """A dataset of ``(image, label)`` items: uint8 ``[3, H, W]`` RGB and an int (-1 if unlabeled).

    Subclasses implement :meth:`image` (and optionally :meth:`source`). When
    ``skip_corrupt`` is set, an unreadable item is replaced by the next readable
    one and its index recorded in :attr:`skipped`; otherwise the
    :class:`~moeheads.errors.DataError` naming the file propagates. With
    DataLoader workers each worker process keeps its own count.

    Args:
        targets: One label per item (-1 for unlabeled items).
        classes: Class names, index = label; empty when unknown or unlabeled.
        num_classes: Number of classes; ``len(classes)`` when omitted.
        name: Dataset name used in error messages.
        skip_corrupt: Skip unreadable items instead of raising.
    """

    def __init__(
        self,
        targets: Sequence[int] | Tensor,
        classes: Sequence[str] = (),
        num_classes: int | None = None,
        name: str = "dataset",
        skip_corrupt: bool = False,
    ) -> None:
        self.targets = torch.as_tensor(targets, dtype=torch.long).reshape(-1)
        self.classes = list(classes)
        self.num_classes = len(self.classes) if num_classes is None else num_classes
        self.name = name
        self.skip_corrupt = skip_corrupt
        self.skipped: set[int] = set()

    def image(self, index: int) -> Tensor:
        """The uint8 ``[3, H, W]`` image of item ``index``."""
        raise NotImplementedError

    def source(self, index: int) -> str:
        """Where item ``index`` comes from (a file path or ``name[index]``), for messages."""
        return f"{self.name}[{index}]"

    def stacked_images(self) -> Tensor | None:
        """Every image as one uint8 ``[N, C, H, W]`` tensor (C = 1 or 3), or ``None``.

        Datasets held as one array of equal-size images return it (read fully into
        memory); the default is ``None``. The device views pipeline uses it.
        """
        return None

    def encoded_file(self, index: int) -> Path | None:
        """The encoded image file of item ``index``, or ``None`` when items are not files.

        The device views pipeline reads these bytes and decodes them on the device.
        """
        return None

    @property
    def num_skipped(self) -> int:
        """How many unreadable items were skipped so far (in this process)."""
        return len(self.skipped)

    def skipped_sources(self) -> list[str]:
        """The files (or item names) skipped so far, in index order."""
        return [self.source(i) for i in sorted(self.skipped)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} items")
        if not self.skip_corrupt:
            return self.image(index), int(self.targets[index])
        for step in range(len(self)):
            current = (index + step) % len(self)
            if current in self.skipped:
                continue
            try:
                return self.image(current), int(self.targets[current])
            except DataError:
                self.skipped.add(current)
        raise DataError(f"{self.name}: none of its {len(self)} images could be read")

    def subset(
        self,
        indices: Sequence[int] | Tensor,
        targets: Sequence[int] | Tensor | None = None,
        classes: Sequence[str] | None = None,
    ) -> ImageDataset:
        """The items at ``indices``, optionally relabelled with new ``targets`` and ``classes``."""
        return SubsetImages(self, indices, targets, classes)

    def extra_repr(self) -> str:
        """Extra text for ``repr``."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        return (
            f"{type(self).__name__}(name={self.name!r}, items={len(self)}, "
            f"num_classes={self.num_classes}{', ' + extra if extra else ''})"
        )


class SubsetImages(ImageDataset):
    """Selected items of another dataset, optionally relabelled.

    Args:
        base: The dataset to select from.
        indices: Indices into ``base``.
        targets: New labels (default: the base labels of the selected items).
        classes: New class names (default: the base's).
    """

    def __init__(
        self,
        base: ImageDataset,
        indices: Sequence[int] | Tensor,
        targets: Sequence[int] | Tensor | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        new_targets = base.targets[self.indices] if targets is None else targets
        new_classes = base.classes if classes is None else classes
        num_classes = base.num_classes if classes is None else len(classes)
        super().__init__(new_targets, new_classes, num_classes, base.name, base.skip_corrupt)
        self.base = base

    def image(self, index: int) -> Tensor:
        """The image of the selected base item."""
        return self.base.image(int(self.indices[index]))

    def source(self, index: int) -> str:
        """The source of the selected base item."""
        return self.base.source(int(self.indices[index]))

    def stacked_images(self) -> Tensor | None:
        """The selected rows of the base's stacked images (``None`` if it has none)."""
        images = self.base.stacked_images()
        return None if images is None else images[self.indices]

    def encoded_file(self, index: int) -> Path | None:
        """The encoded file of the selected base item."""
        return self.base.encoded_file(int(self.indices[index]))


class ConcatImages(ImageDataset):
    """Several datasets with the same classes, one after another.

    Args:
        parts: The datasets, all with the same class list.
    """

    def __init__(self, parts: Sequence[ImageDataset]) -> None:
        if not parts:
            raise ValueError("ConcatImages needs at least one dataset")
        first = parts[0]
        super().__init__(
            torch.cat([p.targets for p in parts]),
            first.classes,
            first.num_classes,
            first.name,
            first.skip_corrupt,
        )
        self.parts = list(parts)
        self._ends = torch.tensor([len(p) for p in parts]).cumsum(0).tolist()

    def _locate(self, index: int) -> tuple[ImageDataset, int]:
        part = bisect.bisect_right(self._ends, index)
        start = self._ends[part - 1] if part else 0
        return self.parts[part], index - start

    def image(self, index: int) -> Tensor:
        """The image from the part that holds ``index``."""
        part, local = self._locate(index)
        return part.image(local)

    def source(self, index: int) -> str:
        """The source from the part that holds ``index``."""
        part, local = self._locate(index)
        return part.source(local)

    def stacked_images(self) -> Tensor | None:
        """The parts' stacked images, concatenated (``None`` unless all have equal shapes)."""
        stacks = [part.stacked_images() for part in self.parts]
        if any(s is None for s in stacks) or len({s.shape[1:] for s in stacks}) != 1:
            return None
        return torch.cat(stacks)

    def encoded_file(self, index: int) -> Path | None:
        """The encoded file from the part that holds ``index``."""
        part, local = self._locate(index)
        return part.encoded_file(local)


def missing_data(name: str, path: Any, layout: str, obtain: str) -> DataError:
    """The error for missing data: names the dataset, the path, the expected layout and the source.

    Args:
        name: Registered dataset name.
        path: Where the data was looked for.
        layout: The expected files, in one short phrase.
        obtain: How to obtain the files, in one short phrase.
    """
    return DataError(f"{name}: no data found at {path}; expected {layout}; {obtain}")
