"""COCO-style AP of the same detections (pycocotools), reported beside the VOC numbers.

An independent evaluator as a cross-check: COCO's AP interpolates precision at 101
recall points and has no *difficult* flag (difficult objects are marked ``iscrowd``,
so matching them is neither rewarded nor penalised).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

from moeheads.errors import ConfigError
from moeheads.eval.detection.voc_eval import Boxes


def import_coco() -> tuple[Any, Any]:
    """pycocotools' ``COCO`` and ``COCOeval``; a :class:`ConfigError` when it is missing."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ModuleNotFoundError:
        raise ConfigError(
            "the detection protocol's COCO-style cross-check needs pycocotools: "
            "pip install 'moeheads[detection]'"
        ) from None
    return COCO, COCOeval


def _xywh(box: Sequence[float]) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _ground_truth(truths: Sequence[Boxes], num_classes: int) -> dict[str, Any]:
    images, annotations = [], []
    for image, gt in enumerate(truths):
        images.append({"id": image})
        difficult = gt.get("difficult")
        for k, (box, label) in enumerate(zip(gt["boxes"].tolist(), gt["labels"].tolist(),
                                             strict=True)):
            xywh = _xywh(box)
            crowd = int(bool(difficult[k])) if difficult is not None else 0
            annotations.append({"id": len(annotations) + 1, "image_id": image,
                                "category_id": label, "bbox": xywh,
                                "area": xywh[2] * xywh[3], "iscrowd": crowd})
    categories = [{"id": c} for c in range(num_classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_ap(detections: Sequence[Boxes], truths: Sequence[Boxes], num_classes: int
            ) -> dict[str, float]:
    """COCO AP, AP50 and AP75 (percent) of per-image detections, as in :func:`voc_ap`."""
    COCO, COCOeval = import_coco()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = _ground_truth(truths, num_classes)
        gt.createIndex()
        results = [
            {"image_id": image, "category_id": label, "bbox": _xywh(box), "score": score}
            for image, det in enumerate(detections)
            for box, score, label in zip(det["boxes"].tolist(), det["scores"].tolist(),
                                         det["labels"].tolist(), strict=True)
        ]
        if not results:
            return {"coco_AP": 0.0, "coco_AP50": 0.0, "coco_AP75": 0.0}
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [max(0.0, 100 * float(s)) for s in evaluator.stats[:3]]
    return {"coco_AP": stats[0], "coco_AP50": stats[1], "coco_AP75": stats[2]}
