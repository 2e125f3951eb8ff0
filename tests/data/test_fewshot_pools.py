"""AugSelf's few-shot class pools: all CUB-200 classes, Plant Disease's folders pooled."""

from pathlib import Path

from dataset_files import write_image

from moeheads.data import create_dataset
from moeheads.data.fewshot import PAPER_POOLS


def test_cub200_all_pools_every_class(tmp_path: Path) -> None:
    images = tmp_path / "CUB_200_2011" / "images"
    for c in range(8):
        write_image(images / f"{c + 1:03d}.bird{c}" / "x.jpg", c)
    pool = create_dataset("cub200", root=tmp_path, split=PAPER_POOLS["cub200"])
    assert pool.num_classes == 8 and len(pool) == 8


def test_plant_disease_all_pools_train_and_test(tmp_path: Path) -> None:
    for sub, count in (("train", 2), ("test", 1)):
        for c in range(3):
            for i in range(count):
                write_image(tmp_path / "plant_disease" / sub / f"Tomato_{c}" / f"{i}.jpg", c)
    pool = create_dataset("plant_disease", root=tmp_path, split=PAPER_POOLS["plant_disease"])
    assert pool.num_classes == 3 and len(pool) == 9
    assert sorted(pool.targets.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert len(create_dataset("plant_disease", root=tmp_path)) == 6  # train/ only
