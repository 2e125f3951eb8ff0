"""The VOC detection metric on cases whose precision/recall curves are worked out by hand."""

import pytest
import torch

from moeheads.eval.detection.coco_check import coco_ap
from moeheads.eval.detection.voc_eval import THRESHOLDS, interpolated_ap, voc_ap


def dets(boxes, scores, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "scores": torch.tensor(scores, dtype=torch.float32),
            "labels": torch.tensor(labels, dtype=torch.long)}


def truth(boxes, labels, difficult=None):
    difficult = difficult or [False] * len(labels)
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.long),
            "difficult": torch.tensor(difficult, dtype=torch.bool)}


G1, G2, MISS = [0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]
# TP, FP, TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
TP_FP_TP = ([dets([G1, MISS, G2], [0.9, 0.8, 0.7], [0, 0, 0])], [truth([G1, G2], [0, 0])])


def test_eleven_point_ap_by_hand() -> None:
    result = voc_ap(*TP_FP_TP, ["a"])
    # recall thresholds 0..0.5 reach precision 1 (6 points), 0.6..1 reach 2/3 (5 points)
    expected = 100 * (6 * 1 + 5 * 2 / 3) / 11
    assert pytest.approx(expected) == result.AP50
    assert pytest.approx(expected) == result.AP  # exact boxes: the same at every IoU
    assert result.per_class == {"a": pytest.approx(expected)}


def test_all_point_ap_and_interpolation() -> None:
    recall, precision = torch.tensor([0.5, 0.5, 1.0]), torch.tensor([1.0, 0.5, 2 / 3])
    assert interpolated_ap(recall, precision, use_07_metric=False) == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3)
    assert interpolated_ap(torch.tensor([0.25]), torch.tensor([1.0])) == pytest.approx(3 / 11)
    assert interpolated_ap(torch.zeros(0), torch.zeros(0)) == 0.0


def test_iou_thresholds_decide_true_positives() -> None:
    # IoU 0.79: a hit at 0.50 ... 0.75 (6 of 10 thresholds), a miss from 0.80
    result = voc_ap([dets([[0, 0, 10, 7.9]], [0.5], [0])], [truth([G1], [0])], ["a"])
    assert result.AP50 == 100 and result.AP75 == 100
    assert result.per_threshold[0.8] == 0 and result.per_threshold[0.95] == 0
    assert pytest.approx(60) == result.AP
    assert len(THRESHOLDS) == 10 and THRESHOLDS[-1] == 0.95


def test_difficult_objects_are_neither_positive_nor_false_positive() -> None:
    image = truth([G1, G2], [0, 0], difficult=[False, True])
    # a detection on the difficult object first, then one on the normal object
    assert voc_ap([dets([G2, G1], [0.9, 0.8], [0, 0])], [image], ["a"]).AP50 == 100
    # missing the difficult object costs no recall
    assert voc_ap([dets([G1], [0.9], [0])], [image], ["a"]).AP50 == 100
    # the same detections without the flag: G2 counts, so missing it halves recall
    plain = truth([G1, G2], [0, 0])
    assert pytest.approx(
        100 * 6 / 11) == voc_ap([dets([G1], [0.9], [0])], [plain], ["a"]).AP50


def test_duplicates_classes_without_detections_and_without_objects() -> None:
    detections = [dets([G1, G1], [0.9, 0.8], [0, 0])]  # the second is a duplicate: FP
    truths = [truth([G1, G2], [0, 1])]  # class b has an object but no detection
    result = voc_ap(detections, truths, ["a", "b", "c"])  # class c has no object
    assert result.per_class == {"a": 100, "b": 0, "c": None}
    assert pytest.approx(50) == result.AP50  # mean over a and b


def test_detections_are_ranked_by_score_across_images() -> None:
    # image 0: a false positive scored highest; image 1: a hit
    detections = [dets([MISS], [0.9], [0]), dets([G1], [0.5], [0])]
    truths = [truth([G2], [0]), truth([G1], [0])]
    # FP then TP: precision 0, 1/2 at recall 0, 1/2 -> 6 of 11 points reach 1/2
    assert pytest.approx(100 * 6 * 0.5 / 11) == voc_ap(detections, truths, ["a"]).AP50


def test_no_object_at_all_is_an_error() -> None:
    with pytest.raises(ValueError, match="undefined"):
        voc_ap([dets([G1], [0.9], [0])], [truth([], [])], ["a"])


def test_coco_style_cross_check_agrees() -> None:
    pytest.importorskip("pycocotools")
    coco = coco_ap(*TP_FP_TP, 1)
    # COCO interpolates at 101 recall points: 51 reach precision 1, 50 reach 2/3
    assert coco["coco_AP50"] == pytest.approx(100 * (51 + 50 * 2 / 3) / 101, abs=1e-6)
    all_point = 100 * (0.5 + 0.5 * 2 / 3)
    assert abs(coco["coco_AP50"] - all_point) < 0.5
    shifted = coco_ap([dets([[0, 0, 10, 7.9]], [0.5], [0])], [truth([G1], [0])], 1)
    assert shifted["coco_AP"] == pytest.approx(60) and shifted["coco_AP75"] == pytest.approx(100)
    image = truth([G1, G2], [0, 0], difficult=[False, True])
    cross = coco_ap([dets([G2, G1], [0.9, 0.8], [0, 0])], [image], 1)
    assert cross["coco_AP50"] == pytest.approx(100)


def test_missing_pycocotools_is_a_clear_error(monkeypatch) -> None:
    import sys

    from moeheads.errors import ConfigError
    from moeheads.eval.detection.coco_check import import_coco

    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    with pytest.raises(ConfigError, match=r"pip install 'moeheads\[detection\]'"):
        import_coco()
