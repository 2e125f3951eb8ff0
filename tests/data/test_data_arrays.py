"""STL-10 binary, CIFAR pickles and Fashion-MNIST IDX files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_files import write_cifar10, write_cifar100, write_idx, write_stl10

from moeheads.data import create_dataset
from moeheads.data.fashion_mnist import DEBIAN_DIR
from moeheads.errors import DataError


def test_stl10_splits_and_pixel_order(tmp_path: Path) -> None:
    written = write_stl10(tmp_path, {"train": 3, "test": 2, "unlabeled": 4})
    train = create_dataset("stl10", root=tmp_path)
    assert len(train) == 3 and train.num_classes == 10 and train.classes[0] == "class0"
    image, label = train[1]
    assert image.dtype == torch.uint8 and image.shape == (3, 96, 96) and label == 1
    assert torch.equal(image, torch.from_numpy(written["train"][1]))  # row-major, not transposed
    assert len(create_dataset("stl10", root=tmp_path, split="test")) == 2
    unlabeled = create_dataset("stl10", root=tmp_path / "stl10_binary", split="unlabeled")
    assert len(unlabeled) == 4 and unlabeled.num_classes == 0 and unlabeled[0][1] == -1
    both = create_dataset("stl10", root=tmp_path, split="train+unlabeled")
    assert len(both) == 7 and both.num_classes == 10
    assert both.targets.tolist() == [0, 1, 2, -1, -1, -1, -1]
    assert torch.equal(both[4][0], torch.from_numpy(written["unlabeled"][1]))


def test_stl10_missing_file_is_named(tmp_path: Path) -> None:
    write_stl10(tmp_path, {"train": 1})
    with pytest.raises(DataError, match=r"unlabeled_X\.bin"):
        create_dataset("stl10", root=tmp_path, split="unlabeled")


@pytest.mark.parametrize(
    ("damage", "message"),
    [("truncate_images", "train_X.bin is damaged"), ("empty_images", "train_X.bin is damaged"),
     ("short_labels", "are damaged"), ("bad_label", "are damaged")],
)
def test_stl10_damaged_files_are_named(tmp_path: Path, damage: str, message: str) -> None:
    """A damaged download is a DataError naming the file, not a bare ValueError."""
    write_stl10(tmp_path, {"train": 3})
    images, labels = tmp_path / "stl10_binary/train_X.bin", tmp_path / "stl10_binary/train_y.bin"
    if damage == "truncate_images":
        images.write_bytes(images.read_bytes()[:-100])
    elif damage == "empty_images":
        images.write_bytes(b"")
    elif damage == "short_labels":
        labels.write_bytes(labels.read_bytes()[:2])
    else:
        labels.write_bytes(bytes([1, 2, 11]))
    with pytest.raises(DataError, match=message):
        create_dataset("stl10", root=tmp_path)


def test_cifar10_splits(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=20)
    trainval = create_dataset("cifar10", root=tmp_path, split="trainval")
    train = create_dataset("cifar10", root=tmp_path, split="train")
    val = create_dataset("cifar10", root=tmp_path, split="val")
    test = create_dataset("cifar10", root=tmp_path, split="test")
    assert (len(trainval), len(test)) == (100, 20) and len(train) + len(val) == 100
    assert len(val) == 10 and sorted(val.targets.tolist()) == list(range(10))  # stratified
    assert trainval.classes[3] == "c3" and trainval[0][0].shape == (3, 32, 32)
    train_pixels = {bytes(train[i][0].numpy()) for i in range(len(train))}
    assert not train_pixels & {bytes(val[i][0].numpy()) for i in range(len(val))}
    again = create_dataset("cifar10", root=tmp_path, split="val")
    assert torch.equal(again.indices, val.indices)
    other = create_dataset("cifar10", root=tmp_path, split="val", split_seed=1)
    assert not torch.equal(other.indices, val.indices)


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    test = create_dataset("cifar100", root=tmp_path, split="test")
    assert len(test) == 100 and test.num_classes == 100 and test[7][1] == 7


def test_fc100_class_disjoint_splits(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    splits = {s: create_dataset("fc100", root=tmp_path, split=s) for s in ("train", "val", "test")}
    assert [splits[s].num_classes for s in ("train", "val", "test")] == [60, 20, 20]
    assert len(splits["test"]) == 40  # 20 classes x (1 train + 1 test image)
    names = [set(splits[s].classes) for s in splits]
    assert not names[0] & names[1] and not names[1] & names[2] and not names[0] & names[2]
    assert set(splits["test"].targets.tolist()) == set(range(20))
    # stand-in coarse map is fine % 20, so test superclasses 0, 7, 12, 14 hold fine 0, 20, ...
    assert splits["test"].classes[:4] == ["f0", "f7", "f12", "f14"]


@pytest.mark.parametrize("gzipped", [True, False])
def test_fashion_mnist_idx(tmp_path: Path, gzipped: bool) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    suffix = ".gz" if gzipped else ""
    raw = tmp_path / "FashionMNIST" / "raw"
    write_idx(raw / f"t10k-images-idx3-ubyte{suffix}", images, gzipped)
    write_idx(raw / f"t10k-labels-idx1-ubyte{suffix}", labels, gzipped)
    data = create_dataset("fashion_mnist", root=tmp_path, split="test")
    image, label = data[3]
    assert len(data) == 5 and label == 3 and image.shape == (3, 28, 28)
    assert torch.equal(image[1], torch.from_numpy(images[3])) and data.classes[0] == "T-shirt/top"
    direct = create_dataset("fashion_mnist", root=raw, split="test")
    assert torch.equal(direct[4][0], data[4][0])


def test_fashion_mnist_bad_idx_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x01\x02\x03\x04garbage")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        create_dataset("fashion_mnist", root=tmp_path, split="test")


@pytest.mark.skipif(DEBIAN_DIR.is_dir(), reason="the Debian files would be found instead")
def test_fashion_mnist_missing_names_the_places(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        create_dataset("fashion_mnist", root=tmp_path)
    assert str(tmp_path) in str(info.value) and str(DEBIAN_DIR) in str(info.value)


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_debian_files() -> None:
    test = create_dataset("fashion_mnist", split="test")
    assert len(test) == 10_000 and test.num_classes == 10
    image, label = test[0]
    assert image.shape == (3, 28, 28) and image.dtype == torch.uint8 and label == 9
    assert torch.bincount(test.targets).tolist() == [1000] * 10
