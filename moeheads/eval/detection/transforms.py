"""Detection batches: images as floats in ``[0, 1]``, random horizontal flips, collation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

Item = tuple[Tensor, dict[str, Tensor]]


def to_float(image: Tensor) -> Tensor:
    """A uint8 ``[3, H, W]`` image as float in ``[0, 1]``."""
    return image.float().div_(255) if image.dtype == torch.uint8 else image.float()


def hflip(image: Tensor, target: dict[str, Tensor]) -> Item:
    """Mirror an image and its boxes left to right."""
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    return image.flip(-1), {**target, "boxes": boxes}


def training_batch(items: Sequence[Item], flips: Sequence[bool]
                   ) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    """Float images, mirrored where ``flips`` says, and detector targets (labels shifted
    by one: 0 is background).

    Difficult objects are kept for training, as detectron2 does for VOC.
    """
    images, targets = [], []
    for (image, target), flip in zip(items, flips, strict=True):
        image = to_float(image)
        if flip:
            image, target = hflip(image, target)
        images.append(image)
        targets.append({"boxes": target["boxes"].float(), "labels": target["labels"] + 1})
    return images, targets


def collate(items: Sequence[Item]) -> list[Item]:
    """Keep a batch as a list (images differ in size)."""
    return list(items)


def move(targets: Sequence[dict[str, Any]], device: torch.device) -> list[dict[str, Any]]:
    """Targets with their tensors on ``device``."""
    return [{k: v.to(device) for k, v in t.items()} for t in targets]
