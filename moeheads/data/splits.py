"""Fixed-seed splits: stratified hold-outs and the train/val/trainval/test scheme."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from moeheads.data.base import ConcatImages, ImageDataset

TransferSplit = Literal["train", "val", "trainval", "test"]
"""Splits of every transfer dataset: ``trainval`` is the official training data, ``train`` and
``val`` partition it (official partition where one exists, else a fixed-seed carve-out)."""


def stratified_split(
    targets: Tensor, *, fraction: float | None = None, count: int | None = None, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Split indices per class into ``(kept, held_out)`` with a fixed seed.

    Exactly one of ``fraction`` (rounded per class) and ``count`` (per class, at most
    the class size) sets how many items of each class are held out.

    Args:
        targets: One label per item.
        fraction: Share of each class to hold out.
        count: Number of items of each class to hold out.
        seed: Seed of the permutation.

    Returns:
        Sorted kept indices and sorted held-out indices.
    """
    if (fraction is None) == (count is None):
        raise ValueError("give exactly one of fraction and count")
    generator = torch.Generator().manual_seed(seed)
    kept: list[Tensor] = []
    held: list[Tensor] = []
    for label in torch.unique(targets).tolist():
        members = (targets == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        size = round(fraction * len(members)) if fraction is not None else count
        size = min(int(size or 0), len(members))
        held.append(members[:size])
        kept.append(members[size:])
    empty = torch.zeros(0, dtype=torch.long)
    return torch.cat([empty, *kept]).sort().values, torch.cat([empty, *held]).sort().values


def transfer_split(
    split: TransferSplit,
    load: Callable[[str], ImageDataset],
    *,
    official_val: bool,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> ImageDataset:
    """Build one of train / val / trainval / test from a loader of the official splits.

    Args:
        split: The split to build.
        load: Loads an official split by name (``"train"``, ``"test"`` and, when
            ``official_val``, ``"val"``).
        official_val: Whether the dataset ships a validation split; if not,
            ``val`` is a stratified ``val_fraction`` of the official train split.
        val_fraction: Share of each class moved to ``val`` when it is carved out.
        seed: Seed of the carve-out.
    """
    if split == "test":
        return load("test")
    if official_val:
        if split == "trainval":
            return ConcatImages([load("train"), load("val")])
        return load(split)
    full = load("train")
    if split == "trainval":
        return full
    train, val = stratified_split(full.targets, fraction=val_fraction, seed=seed)
    return full.subset(train if split == "train" else val)


def select_classes(dataset: ImageDataset, class_ids: Sequence[int]) -> ImageDataset:
    """The items of the given classes, relabelled ``0..len(class_ids)-1`` in the given order.

    Class names follow when the dataset has them. Used for class-disjoint
    few-shot splits.
    """
    ids = torch.as_tensor(list(class_ids), dtype=torch.long)
    relabel = torch.full((max(dataset.num_classes, int(ids.max()) + 1),), -1, dtype=torch.long)
    relabel[ids] = torch.arange(len(ids))
    known = dataset.targets >= 0
    mapped = torch.where(known, relabel[dataset.targets.clamp(min=0)], -1)
    indices = (mapped >= 0).nonzero().flatten()
    names = [dataset.classes[i] for i in ids.tolist()] if dataset.classes else None
    subset = dataset.subset(indices, mapped[indices], names)
    subset.num_classes = len(ids)
    return subset
