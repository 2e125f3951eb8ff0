"""ImageFolder and flat folders, corrupt files, the item contract and the registry."""

from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_files import write_corrupt, write_image
from PIL import Image

from moeheads.data import DATASETS, ImageDataset, create_dataset
from moeheads.data.images import to_rgb_uint8
from moeheads.errors import ConfigError, DataError


def _tree(root: Path) -> dict[str, object]:
    pixels = {
        "cat/a.jpg": write_image(root / "cat" / "a.jpg", 1),
        "cat/nested/b.png": write_image(root / "cat" / "nested" / "b.png", 2),
        "dog/c.PNG": write_image(root / "dog" / "c.PNG", 3, size=6, mode="L"),
    }
    (root / "dog" / "notes.txt").write_text("not an image")
    return pixels


def test_image_folder_reads_jpeg_png_and_grayscale(tmp_path: Path) -> None:
    written = _tree(tmp_path / "train")
    data = create_dataset("folder", root=tmp_path, split="train")
    assert data.classes == ["cat", "dog"] and data.num_classes == 2 and len(data) == 3
    assert data.targets.tolist() == [0, 0, 1]
    for image, _ in (data[i] for i in range(len(data))):
        assert image.dtype == torch.uint8 and image.shape[0] == 3
    png, _ = data[1]
    assert torch.equal(png, torch.from_numpy(written["cat/nested/b.png"]).permute(2, 0, 1))
    gray, label = data[2]
    assert label == 1 and gray.shape == (3, 6, 6) and torch.equal(gray[0], gray[2])
    jpeg, _ = data[0]  # lossy: compare with PIL's decoding of the same file
    decoded = np.asarray(Image.open(tmp_path / "train" / "cat" / "a.jpg").convert("RGB"))
    assert torch.equal(jpeg, torch.from_numpy(decoded.copy()).permute(2, 0, 1))


def test_flat_folder_is_unlabeled(tmp_path: Path) -> None:
    for i in range(3):
        write_image(tmp_path / f"img{i}.png", i)
    data = create_dataset("folder", root=tmp_path)
    assert len(data) == 3 and data.num_classes == 0 and data.classes == []
    assert {data[i][1] for i in range(3)} == {-1}


def test_missing_folder_names_dataset_path_and_layout(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        create_dataset("folder", root=missing)
    message = str(info.value)
    assert message.startswith("folder:") and str(missing) in message and "<class>" in message
    assert "\n" not in message


def test_corrupt_file_raises_naming_the_file(tmp_path: Path) -> None:
    write_image(tmp_path / "a" / "good.png", 0)
    write_corrupt(tmp_path / "a" / "bad.jpg")
    data = create_dataset("folder", root=tmp_path)
    bad = data.paths.index(tmp_path / "a" / "bad.jpg")
    with pytest.raises(DataError, match=r"bad\.jpg"):
        data[bad]


def test_corrupt_file_skipped_and_counted(tmp_path: Path) -> None:
    write_corrupt(tmp_path / "a" / "0_bad.jpg")
    write_image(tmp_path / "a" / "1_good.png", 0)
    write_image(tmp_path / "b" / "2_good.png", 1)
    data = create_dataset("folder", root=tmp_path, skip_corrupt=True)
    image, label = data[0]  # the corrupt file is replaced by the next readable one
    assert image.shape == (3, 8, 8) and label == 0
    assert data.num_skipped == 1 and data.skipped_sources() == [str(tmp_path / "a" / "0_bad.jpg")]
    data[0]
    assert data.num_skipped == 1


def test_every_file_corrupt_is_an_error(tmp_path: Path) -> None:
    write_corrupt(tmp_path / "a" / "bad.jpg")
    data = create_dataset("folder", root=tmp_path, skip_corrupt=True)
    with pytest.raises(DataError, match="none of its 1 images"):
        data[0]


def test_registry_validates_options_and_describes() -> None:
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        create_dataset("synthetic_shapes", colour=True)
    with pytest.raises(ConfigError, match="split"):
        create_dataset("stl10", root="x", split="validation")
    descriptions = dict(DATASETS.describe())
    assert all(descriptions[name] for name in DATASETS.list())
    for name in DATASETS.list():
        assert {"root", "split", "download"} <= set(DATASETS.get(name).option_names())


def test_to_rgb_uint8_conversions() -> None:
    gray = torch.arange(16, dtype=torch.uint8).reshape(4, 4)
    assert to_rgb_uint8(gray).shape == (3, 4, 4)
    rgba = torch.zeros(4, 5, 6, dtype=torch.uint8)
    assert to_rgb_uint8(rgba).shape == (3, 5, 6)
    with pytest.raises(TypeError):
        to_rgb_uint8(torch.zeros(3, 2, 2))


def test_subset_and_negative_index(tmp_path: Path) -> None:
    _tree(tmp_path)
    data: ImageDataset = create_dataset("folder", root=tmp_path)
    subset = data.subset([2, 0])
    assert subset.targets.tolist() == [1, 0] and subset.classes == data.classes
    assert torch.equal(subset[0][0], data[2][0]) and torch.equal(data[-1][0], data[2][0])
    with pytest.raises(IndexError):
        data[3]
