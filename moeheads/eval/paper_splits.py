"""AugSelf's validation splits for the linear protocol, per dataset (evaluation side).

AugSelf's linear evaluation (which STAR uses) draws the validation split of the
datasets without an official one with ``torch.utils.data.random_split(trainval,
[train, val], generator=torch.Generator().manual_seed(seed))`` at fixed sizes and
seeds; Flowers-102, FGVC Aircraft and DTD use their official validation split.
:func:`paper_split` redraws the same permutation, so on a dataset loaded in the same
order as torchvision's (CIFAR-10/100, Food-101, Pets, STL-10) the split is the very
same rows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from moeheads.errors import DataError

#: Dataset -> (train rows, validation rows, seed) of AugSelf's random split of trainval.
PAPER_SPLITS: dict[str, tuple[int, int, int]] = {
    "cifar10": (45000, 5000, 43),
    "cifar100": (45000, 5000, 44),
    "food101": (68175, 7575, 42),
    "pets": (2940, 740, 49),
    "cars": (6494, 1650, 45),
    "mit67": (4690, 670, 51),
    "stl10": (4500, 500, 50),
    "imagenet100": (114020, 12669, 12),
}

#: Datasets whose official validation split AugSelf uses.
OFFICIAL_VAL: tuple[str, ...] = ("flowers102", "aircraft", "dtd")


def paper_split(name: str, rows: int) -> tuple[Tensor, Tensor]:
    """Row indices (train, val) of AugSelf's split of ``rows`` trainval rows of ``name``.

    With the paper's row count the permutation and sizes are AugSelf's; with another
    count (a subset, another release) the validation share is kept.

    Raises:
        DataError: If ``name`` has no entry in :data:`PAPER_SPLITS`.
    """
    if name not in PAPER_SPLITS:
        raise DataError(f"no paper validation split for {name!r}")
    train, val, seed = PAPER_SPLITS[name]
    if rows != train + val:
        val = max(1, round(rows * val / (train + val)))
        train = rows - val
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    return order[:train], order[train:]
