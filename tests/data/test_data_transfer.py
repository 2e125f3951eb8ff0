"""Transfer and few-shot datasets on tiny trees in each dataset's own layout, and ImageNet-100.

Flowers-102 is not tested on files: torchvision checks the MD5 sums of its
``.mat`` files, which tiny stand-ins cannot match.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_files import write_image

from moeheads.data import FEWSHOT_SUITE, TRANSFER_SUITE, create_dataset, transfer_metric
from moeheads.data.imagenet100 import imagenet100_classes
from moeheads.errors import DataError


def _sizes(name: str, root: Path, **options: object) -> dict[str, int]:
    splits = ("train", "val", "trainval", "test")
    return {s: len(create_dataset(name, root=root, split=s, **options)) for s in splits}


def test_suites_and_metrics() -> None:
    assert len(TRANSFER_SUITE) == 11 and FEWSHOT_SUITE == ("cub200", "fc100", "plant_disease")
    per_class = {n for n in TRANSFER_SUITE if transfer_metric(n) == "mean_per_class"}
    assert per_class == {"pets", "flowers102", "caltech101", "aircraft"}


def test_mit67_split_lists(tmp_path: Path) -> None:
    folder = tmp_path / "mit67"
    train, test = [], []
    for c, name in enumerate(("bar", "kitchen")):
        for i in range(6):
            write_image(folder / "Images" / name / f"{name}_{i}.jpg", 10 * c + i)
            (train if i < 5 else test).append(f"{name}/{name}_{i}.jpg")
    (folder / "TrainImages.txt").write_text("\n".join(train) + "\n")
    (folder / "TestImages.txt").write_text("\n".join(test) + "\n")
    assert _sizes("mit67", tmp_path, val_fraction=0.2) == {
        "train": 8, "val": 2, "trainval": 10, "test": 2,
    }  # fmt: skip
    data = create_dataset("mit67", root=tmp_path, split="test")
    assert data.classes == ["bar", "kitchen"] and data.targets.tolist() == [0, 1]
    assert data[1][0].shape == (3, 8, 8)


def test_mit67_unknown_class_in_list(tmp_path: Path) -> None:
    folder = tmp_path / "mit67"
    write_image(folder / "Images" / "bar" / "a.jpg")
    (folder / "TrainImages.txt").write_text("pub/a.jpg\n")
    with pytest.raises(DataError, match="pub"):
        create_dataset("mit67", root=tmp_path, split="trainval")


def test_dtd_official_splits(tmp_path: Path) -> None:
    data = tmp_path / "dtd" / "dtd"
    for split, count in (("train", 3), ("val", 2), ("test", 1)):
        lines = []
        for name in ("banded", "woven"):
            for i in range(count):
                write_image(data / "images" / name / f"{split}{i}.jpg", i)
                lines.append(f"{name}/{split}{i}.jpg")
        (data / "labels").mkdir(parents=True, exist_ok=True)
        (data / "labels" / f"{split}1.txt").write_text("\n".join(lines) + "\n")
    assert _sizes("dtd", tmp_path) == {"train": 6, "val": 4, "trainval": 10, "test": 2}
    assert create_dataset("dtd", root=tmp_path).classes == ["banded", "woven"]


def test_pets_trainval_list(tmp_path: Path) -> None:
    base = tmp_path / "oxford-iiit-pet"
    rows = {"trainval": [], "test": []}
    for label, breed in enumerate(("Abyssinian", "beagle"), start=1):
        for i in range(1, 6):
            write_image(base / "images" / f"{breed}_{i}.jpg", i)
            rows["trainval" if i < 5 else "test"].append(f"{breed}_{i} {label} 1 1")
    (base / "annotations").mkdir()
    for split, lines in rows.items():
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    assert _sizes("pets", tmp_path, val_fraction=0.25) == {
        "train": 6, "val": 2, "trainval": 8, "test": 2,
    }  # fmt: skip
    assert create_dataset("pets", root=tmp_path).classes == ["Abyssinian", "Beagle"]


def test_food101_meta_json(tmp_path: Path) -> None:
    base = tmp_path / "food-101"
    meta = {"train": {}, "test": {}}
    for name in ("pizza", "ramen"):
        for i in range(4):
            write_image(base / "images" / name / f"{i}.jpg", i)
        meta["train"][name] = [f"{name}/{i}" for i in range(3)]
        meta["test"][name] = [f"{name}/3"]
    (base / "meta").mkdir()
    for split, content in meta.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(content))
    sizes = _sizes("food101", tmp_path, val_fraction=0.34)
    assert sizes == {"train": 4, "val": 2, "trainval": 6, "test": 2}


def test_aircraft_variant_lists(tmp_path: Path) -> None:
    data = tmp_path / "fgvc-aircraft-2013b" / "data"
    (data / "variants.txt").parent.mkdir(parents=True)
    (data / "variants.txt").write_text("707-320\nA300B4\n")
    for split, ids in (("train", range(0, 4)), ("val", range(4, 6)), ("test", range(6, 8))):
        lines = [f"{i:07d} {'707-320' if i % 2 else 'A300B4'}" for i in ids]
        (data / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
        for i in ids:
            write_image(data / "images" / f"{i:07d}.jpg", i)
    assert _sizes("aircraft", tmp_path) == {"train": 4, "val": 2, "trainval": 6, "test": 2}
    assert create_dataset("aircraft", root=tmp_path, split="test").targets.tolist() == [1, 0]


def test_caltech101_thirty_per_class_draw(tmp_path: Path) -> None:
    categories = tmp_path / "caltech101" / "101_ObjectCategories"
    for name, count in (("BACKGROUND_Google", 2), ("accordion", 5), ("anchor", 4)):
        for i in range(1, count + 1):
            write_image(categories / name / f"image_{i:04d}.jpg", i)
    sizes = _sizes("caltech101", tmp_path, train_per_class=3, val_fraction=0.34)
    assert sizes == {"train": 4, "val": 2, "trainval": 6, "test": 3}
    data = create_dataset("caltech101", root=tmp_path, split="test")
    assert data.classes == ["accordion", "anchor"] and data.num_classes == 2


def test_sun397_partition_lists_and_fallback(tmp_path: Path) -> None:
    base = tmp_path / "SUN397"
    base.mkdir()
    (base / "ClassName.txt").write_text("/a/abbey\n/b/beach\n")
    for name in ("abbey", "beach"):
        for i in range(4):
            write_image(base / name[0] / name / f"sun_{name}{i}.jpg", i)
    assert _sizes("sun397", tmp_path, val_fraction=0.5) == {
        "train": 2, "val": 2, "trainval": 4, "test": 4,
    }  # fmt: skip
    (base / "Training_01.txt").write_text("/a/abbey/sun_abbey0.jpg\n/b/beach/sun_beach0.jpg\n")
    (base / "Testing_01.txt").write_text("/a/abbey/sun_abbey1.jpg\n")
    test = create_dataset("sun397", root=tmp_path, split="test")
    assert [Path(test.source(0)).name, len(test)] == ["sun_abbey1.jpg", 1]
    assert len(create_dataset("sun397", root=tmp_path, split="trainval")) == 2


def test_cars_mat_files(tmp_path: Path) -> None:
    sio = pytest.importorskip("scipy.io")
    base = tmp_path / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    sio.savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array(["A", "B"], object)})
    for split, mat in (("train", base / "devkit" / "cars_train_annos.mat"),
                       ("test", base / "cars_test_annos_withlabels.mat")):  # fmt: skip
        records = np.zeros(4, dtype=[("fname", object), ("class", np.int64)])
        for i in range(4):
            records[i] = (f"{i:05d}.jpg", i % 2 + 1)
            write_image(base / f"cars_{split}" / f"{i:05d}.jpg", i)
        sio.savemat(mat, {"annotations": records})
    sizes = _sizes("cars", tmp_path, val_fraction=0.5)
    assert sizes == {"train": 2, "val": 2, "trainval": 4, "test": 4}
    assert create_dataset("cars", root=tmp_path, split="test").classes == ["A", "B"]


def test_transfer_missing_data_names_the_path(tmp_path: Path) -> None:
    for name in ("dtd", "food101", "pets", "aircraft", "caltech101", "sun397", "mit67"):
        with pytest.raises(DataError) as info:
            create_dataset(name, root=tmp_path)
        assert str(info.value).startswith(f"{name}: no data found at {tmp_path}")
        assert "expected" in str(info.value)


def test_torchvision_backed_corrupt_file_skip(tmp_path: Path) -> None:
    categories = tmp_path / "caltech101" / "101_ObjectCategories"
    (categories / "BACKGROUND_Google").mkdir(parents=True)
    write_image(categories / "anchor" / "image_0001.jpg", 1)
    (categories / "anchor" / "image_0002.jpg").write_bytes(b"broken")
    data = create_dataset("caltech101", root=tmp_path, split="test", train_per_class=0)
    with pytest.raises(DataError, match="image_0002"):
        data[1]
    data = create_dataset(
        "caltech101", root=tmp_path, split="test", train_per_class=0, skip_corrupt=True
    )
    assert data[1][0].shape == (3, 8, 8) and data.num_skipped == 1


def test_imagenet100_filters_to_the_list(tmp_path: Path) -> None:
    wnids = imagenet100_classes()
    assert len(wnids) == len(set(wnids)) == 100 and wnids[0] == "n02869837"
    for split in ("train", "val"):
        for k, wnid in enumerate([*wnids, "n01440764", "n15075141"]):
            if k % 25 == 0 or wnid.startswith(("n01440764", "n15075141")):
                write_image(tmp_path / split / wnid / f"{wnid}_1.JPEG", k)
            else:
                (tmp_path / split / wnid).mkdir(parents=True)
    val = create_dataset("imagenet100", root=tmp_path, split="val")
    assert val.num_classes == 100 and val.classes == wnids and len(val) == 4
    assert val.targets.tolist() == [0, 25, 50, 75] and val[1][0].shape == (3, 8, 8)


def test_imagenet100_missing_classes(tmp_path: Path) -> None:
    (tmp_path / "train" / "n02869837").mkdir(parents=True)
    with pytest.raises(DataError, match="99 of the 100 class folders are missing"):
        create_dataset("imagenet100", root=tmp_path)
    with pytest.raises(DataError, match="not available"):
        create_dataset("imagenet100", root=tmp_path, download=True)


def test_cub200_class_split(tmp_path: Path) -> None:
    images = tmp_path / "CUB_200_2011" / "images"
    for c in range(8):
        write_image(images / f"{c + 1:03d}.bird{c}" / "x.jpg", c)
    splits = {s: create_dataset("cub200", root=tmp_path, split=s) for s in ("train", "val", "test")}
    assert splits["train"].classes == ["001.bird0", "003.bird2", "005.bird4", "007.bird6"]
    assert splits["val"].classes == ["002.bird1", "006.bird5"]
    assert splits["test"].classes == ["004.bird3", "008.bird7"]
    assert splits["test"].targets.tolist() == [0, 1] and splits["test"].num_classes == 2
    direct = create_dataset("cub200", root=tmp_path / "CUB_200_2011", split="test")
    assert torch.equal(direct[1][0], splits["test"][1][0])


def test_plant_disease_kaggle_and_plain_layouts(tmp_path: Path) -> None:
    for c in range(3):
        write_image(tmp_path / "plant_disease" / "train" / f"Tomato_{c}" / "a.jpg", c)
    data = create_dataset("plant_disease", root=tmp_path)
    assert data.num_classes == 3 and len(data) == 3
