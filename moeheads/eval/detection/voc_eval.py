"""PASCAL VOC detection AP: VOC2007 11-point interpolation at IoU 0.50:0.05:0.95.

Per class, detections of all images are sorted by score; each is a true positive when
its best-overlapping ground-truth box of the same class and image has IoU above the
threshold and was not matched before, a false positive otherwise. A detection whose
best match is a *difficult* object counts as neither. Recall is divided by the number
of non-difficult objects. AP is the mean over thresholds and classes that have
objects; AP50 and AP75 are the values at IoU 0.50 and 0.75.

Boxes are ``[x1, y1, x2, y2]`` in continuous pixel coordinates (areas without the
``+1`` of the original MATLAB code).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

#: IoU thresholds 0.50, 0.55, ..., 0.95.
THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

Boxes = Mapping[str, Tensor]


def interpolated_ap(recall: Tensor, precision: Tensor, use_07_metric: bool = True) -> float:
    """Area under a precision/recall curve.

    Args:
        recall: Recall after each ranked detection (non-decreasing).
        precision: Precision after each ranked detection.
        use_07_metric: VOC2007's 11-point interpolation (mean over recall 0, 0.1, ...,
            1 of the best precision at that recall or above); otherwise the all-point
            area of the precision envelope (VOC2010 and later).
    """
    if recall.numel() == 0:
        return 0.0
    if use_07_metric:
        total = 0.0
        for t in torch.linspace(0, 1, 11).tolist():
            reached = precision[recall >= t - 1e-12]
            total += float(reached.max()) if reached.numel() else 0.0
        return total / 11
    r = torch.cat([torch.zeros(1), recall.double(), torch.ones(1)])
    p = torch.cat([torch.zeros(1), precision.double(), torch.zeros(1)])
    p = torch.flip(torch.cummax(torch.flip(p, [0]), 0).values, [0])
    changes = torch.nonzero(r[1:] != r[:-1]).flatten()
    return float(((r[changes + 1] - r[changes]) * p[changes + 1]).sum())


def _iou(box: Tensor, boxes: Tensor) -> Tensor:
    lt = torch.maximum(box[:2], boxes[:, :2])
    rb = torch.minimum(box[2:], boxes[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area = (box[2:] - box[:2]).prod()
    areas = (boxes[:, 2:] - boxes[:, :2]).prod(dim=1)
    return inter / (area + areas - inter)


def class_ap(
    detections: Sequence[tuple[int, float, Tensor]],
    truths: Mapping[int, tuple[Tensor, Tensor]],
    threshold: float,
    use_07_metric: bool = True,
) -> float | None:
    """AP of one class at one IoU threshold.

    Args:
        detections: ``(image index, score, box)`` of every detection of the class.
        truths: Image index -> (boxes ``[N, 4]``, difficult ``[N]`` bool) of the class.
        threshold: A detection matches when IoU > ``threshold``.
        use_07_metric: See :func:`interpolated_ap`.

    Returns:
        The AP, or ``None`` when the class has no non-difficult object.
    """
    positives = sum(int((~difficult).sum()) for _, difficult in truths.values())
    if positives == 0:
        return None
    matched = {image: torch.zeros(len(b), dtype=torch.bool) for image, (b, _) in truths.items()}
    outcomes: list[int] = []  # 1 true positive, 0 false positive
    for image, _, box in sorted(detections, key=lambda d: -d[1]):
        boxes, difficult = truths.get(image, (torch.zeros(0, 4), torch.zeros(0, dtype=torch.bool)))
        if len(boxes) == 0:
            outcomes.append(0)
            continue
        overlaps = _iou(box.double(), boxes.double())
        best = int(overlaps.argmax())
        if overlaps[best] <= threshold:
            outcomes.append(0)
        elif bool(difficult[best]):
            continue  # neither true nor false positive
        elif not matched[image][best]:
            matched[image][best] = True
            outcomes.append(1)
        else:
            outcomes.append(0)
    tp = torch.tensor(outcomes, dtype=torch.float64).cumsum(0)
    ranks = torch.arange(1, len(outcomes) + 1, dtype=torch.float64)
    return interpolated_ap(tp / positives, tp / ranks, use_07_metric)


@dataclass(frozen=True)
class VOCResult:
    """VOC-style detection AP (in percent, as detection papers report it).

    Attributes:
        AP: Mean over IoU 0.50:0.05:0.95 and classes.
        AP50: Mean over classes at IoU 0.50.
        AP75: Mean over classes at IoU 0.75.
        per_class: Class name -> AP50 (``None``: no objects of the class).
        per_threshold: IoU threshold -> mean AP over classes.
    """

    AP: float
    AP50: float
    AP75: float
    per_class: dict[str, float | None]
    per_threshold: dict[float, float]


def _by_class(detections: Sequence[Boxes], truths: Sequence[Boxes], num_classes: int
              ) -> tuple[list[list[tuple[int, float, Tensor]]], list[dict[int, tuple]]]:
    dets: list[list[tuple[int, float, Tensor]]] = [[] for _ in range(num_classes)]
    gts: list[dict[int, tuple]] = [{} for _ in range(num_classes)]
    for image, (det, gt) in enumerate(zip(detections, truths, strict=True)):
        for box, score, label in zip(det["boxes"], det["scores"].tolist(),
                                     det["labels"].tolist(), strict=True):
            dets[label].append((image, score, box))
        difficult = gt.get("difficult", torch.zeros(len(gt["labels"]), dtype=torch.bool))
        for c in gt["labels"].unique().tolist():
            keep = gt["labels"] == c
            gts[c][image] = (gt["boxes"][keep], difficult[keep].bool())
    return dets, gts


def voc_ap(detections: Sequence[Boxes], truths: Sequence[Boxes], classes: Sequence[str],
           use_07_metric: bool = True) -> VOCResult:
    """VOC AP of detections on a set of images.

    Args:
        detections: Per image, ``{"boxes": [N, 4], "scores": [N], "labels": [N]}``
            with labels indexing ``classes``.
        truths: Per image, ``{"boxes": [M, 4], "labels": [M], "difficult": [M]}``.
        classes: Class names, index = label.
        use_07_metric: See :func:`interpolated_ap`.
    """
    dets, gts = _by_class(detections, truths, len(classes))
    table = {t: [class_ap(dets[c], gts[c], t, use_07_metric) for c in range(len(classes))]
             for t in THRESHOLDS}
    counted = [c for c in range(len(classes)) if table[0.5][c] is not None]
    if not counted:
        raise ValueError("no class has a non-difficult object: AP is undefined")

    def mean(values: list[float | None]) -> float:
        return 100 * sum(float(values[c] or 0.0) for c in counted) / len(counted)

    per_threshold = {t: mean(values) for t, values in table.items()}
    per_class = {name: None if ap is None else 100 * ap
                 for name, ap in zip(classes, table[0.5], strict=True)}
    return VOCResult(AP=sum(per_threshold.values()) / len(THRESHOLDS), AP50=per_threshold[0.5],
                     AP75=per_threshold[0.75], per_class=per_class, per_threshold=per_threshold)
