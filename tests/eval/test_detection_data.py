"""The ``voc`` dataset: layout, parsing and the errors for missing or damaged files."""

from pathlib import Path

import pytest
import torch

from moeheads.data import create_dataset
from moeheads.data.voc import VOC_CLASSES, parse_annotation
from moeheads.errors import DataError
from tests.eval.voc_tree import tiny_voc, write_voc, xml_of


def test_splits_join_the_years(tmp_path: Path) -> None:
    tiny_voc(tmp_path, train=3, test=2)
    assert len(create_dataset("voc", root=tmp_path)) == 6  # VOC07 + VOC12 trainval
    assert len(create_dataset("voc", root=tmp_path, split="test")) == 2  # VOC07 test
    assert len(create_dataset("voc", root=tmp_path, years=["2012"])) == 3
    image, target = create_dataset("voc", root=tmp_path, split="test")[1]
    assert image.shape == (3, 64, 64) and image.dtype == torch.uint8
    assert target["labels"].tolist() == [VOC_CLASSES.index("dog")]


def test_annotation_boxes_are_zero_based(tmp_path: Path) -> None:
    path = tmp_path / "a.xml"
    path.write_text(xml_of("a", [("cat", (1, 11, 20, 30), False),
                                 ("person", (5, 5, 9, 9), True)]))
    target = parse_annotation(path)
    assert target["boxes"].tolist() == [[0, 10, 20, 30], [4, 4, 9, 9]]
    assert target["labels"].tolist() == [VOC_CLASSES.index("cat"), VOC_CLASSES.index("person")]
    assert target["difficult"].tolist() == [False, True]


def test_missing_split_names_the_layout_and_the_source(tmp_path: Path) -> None:
    write_voc(tmp_path, "2007", "trainval", 1)
    with pytest.raises(DataError, match=r"VOC2012 trainval.*ImageSets/Main/trainval.txt") as err:
        create_dataset("voc", root=tmp_path)
    assert "host.robots.ox.ac.uk" in str(err.value) and "VOCdevkit" in str(err.value)


def test_damaged_annotation_and_image_are_data_errors(tmp_path: Path) -> None:
    stems = write_voc(tmp_path, "2007", "test", 2)
    folder = tmp_path / "VOCdevkit" / "VOC2007"
    (folder / "Annotations" / f"{stems[0]}.xml").write_text("<annotation><object>")
    (folder / "JPEGImages" / f"{stems[1]}.jpg").write_bytes(b"not a jpeg")
    data = create_dataset("voc", root=tmp_path, split="test")
    with pytest.raises(DataError, match=rf"cannot read annotation .*{stems[0]}.xml"):
        data[0]
    with pytest.raises(DataError, match=rf"voc: cannot read image .*{stems[1]}.jpg"):
        data[1]


def test_unknown_class_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "a.xml"
    path.write_text(xml_of("a", [("unicorn", (1, 1, 5, 5), False)]))
    with pytest.raises(DataError, match=r"a\.xml"):
        parse_annotation(path)


def test_synthetic_boxes_are_tight_and_reproducible() -> None:
    data = create_dataset("synthetic_shapes_boxes", length=6, size=48, num_classes=2)
    again = create_dataset("synthetic_shapes_boxes", split="trainval", length=6, size=48,
                           num_classes=2)
    test = create_dataset("synthetic_shapes_boxes", split="test", length=6, size=48)
    assert data.classes == ["circle", "square"] and len(data) == 6
    for index in range(6):
        image, target = data[index]
        assert torch.equal(image, again[index][0])  # trainval is train
        assert image.shape == (3, 48, 48) and 1 <= len(target["labels"]) <= 3
        assert set(target["labels"].tolist()) <= {0, 1} and not target["difficult"].any()
        boxes = target["boxes"]
        assert (boxes[:, 2:] > boxes[:, :2]).all() and (boxes >= 0).all() and (boxes <= 48).all()
    assert not torch.equal(data[0][0], test[0][0])  # another hash stream
    single = next(i for i in range(6) if len(data[i][1]["labels"]) == 1)
    image, target = data[single]
    x1, y1, x2, y2 = (int(v) for v in target["boxes"][0])
    bright = image.float().amax(0) > 150  # the shape is far brighter than the background
    rows, cols = bright.any(1).nonzero().flatten(), bright.any(0).nonzero().flatten()
    assert (int(cols.min()), int(rows.min())) == (x1, y1)
    assert (int(cols.max()) + 1, int(rows.max()) + 1) == (x2, y2)
