"""Run a trained detector over a dataset: detections and ground truth per image."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from moeheads.eval.detection.detector import set_image_sizes
from moeheads.eval.detection.transforms import collate, to_float
from moeheads.runtime.distributed import DistContext


def batch_share(length: int, batch_size: int, rank: int, world: int) -> list[int]:
    """The images of batches ``rank``, ``rank + world``, ... of ``length`` images in batches
    of ``batch_size``: whole batches, so that each image is detected in the batch (and so
    with the padding) it has in one process.

    Example:
        >>> batch_share(10, 2, 1, 2)
        [2, 3, 6, 7]
    """
    return [i for i in range(length) if (i // batch_size) % world == rank]


@torch.no_grad()
def predict(model: Any, data: Dataset, device: torch.device, images_per_batch: int = 4,
            num_workers: int = 0, ctx: DistContext | None = None,
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Detections (labels from 0, boxes in the original image's pixels) and targets.

    Args:
        ctx: The processes that share the work (one when ``None``): each detects its
            share of the images (:func:`batch_share`) and rank 0 receives them all.

    Returns:
        ``(detections, truths)``, one dict per image of ``data`` in its order, on the CPU;
        two empty lists on ranks other than 0.
    """
    model.eval()
    set_image_sizes(model, False, ())
    ctx = ctx or DistContext(device=device)
    share = batch_share(len(data), images_per_batch, ctx.rank, ctx.world_size)  # type: ignore[arg-type]
    detections, truths = [], []
    loader = DataLoader(Subset(data, share), batch_size=images_per_batch, collate_fn=collate,
                        num_workers=num_workers)
    for items in loader:
        outputs = model([to_float(image).to(device) for image, _ in items])
        for output, (_, target) in zip(outputs, items, strict=True):
            detections.append({"boxes": output["boxes"].cpu(), "scores": output["scores"].cpu(),
                               "labels": output["labels"].cpu() - 1})
            truths.append(target)
    if not ctx.distributed:
        return detections, truths
    gathered = ctx.gather_object((share, detections, truths))
    if gathered is None:
        return [], []
    order: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for indices, dets, gts in gathered:  # type: ignore[misc]
        order.update(zip(indices, zip(dets, gts, strict=True), strict=True))
    return [order[i][0] for i in range(len(order))], [order[i][1] for i in range(len(order))]
