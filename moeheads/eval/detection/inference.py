"""Run a trained detector over a dataset: detections and ground truth per image."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from moeheads.eval.detection.detector import set_image_sizes
from moeheads.eval.detection.transforms import collate, to_float


@torch.no_grad()
def predict(model: Any, data: Dataset, device: torch.device, images_per_batch: int = 4,
            num_workers: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Detections (labels from 0, boxes in the original image's pixels) and targets.

    Returns:
        ``(detections, truths)``, one dict per image of ``data``, on the CPU.
    """
    model.eval()
    set_image_sizes(model, False, ())
    detections, truths = [], []
    loader = DataLoader(data, batch_size=images_per_batch, collate_fn=collate,
                        num_workers=num_workers)
    for items in loader:
        outputs = model([to_float(image).to(device) for image, _ in items])
        for output, (_, target) in zip(outputs, items, strict=True):
            detections.append({"boxes": output["boxes"].cpu(), "scores": output["scores"].cpu(),
                               "labels": output["labels"].cpu() - 1})
            truths.append(target)
    return detections, truths
