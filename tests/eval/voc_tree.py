"""Tiny PASCAL VOC trees for detection tests: 64x64 JPEGs with coloured squares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: Class name -> colour of its squares.
COLOURS = {"cat": (230, 40, 40), "dog": (40, 60, 230)}


def xml_of(stem: str, objects: list[tuple[str, tuple[int, int, int, int], bool]]) -> str:
    """A VOC annotation: ``(name, (xmin, ymin, xmax, ymax) 1-based, difficult)`` per object."""
    parts = [f"<annotation><filename>{stem}.jpg</filename>"
             "<size><width>64</width><height>64</height><depth>3</depth></size>"]
    for name, (x1, y1, x2, y2), difficult in objects:
        parts.append(f"<object><name>{name}</name><difficult>{int(difficult)}</difficult>"
                     f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
                     f"<ymax>{y2}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def write_voc(root: Path, year: str, split: str, count: int, seed: int = 0) -> list[str]:
    """``count`` images, each with one square of a random class, listed in ``split``."""
    rng = np.random.default_rng(seed)
    folder = root / "VOCdevkit" / f"VOC{year}"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    stems = []
    for i in range(count):
        stem = f"{year}_{split}_{i:04d}"
        name = list(COLOURS)[i % len(COLOURS)]
        side = int(rng.integers(20, 36))
        x, y = (int(v) for v in rng.integers(0, 64 - side, 2))
        pixels = rng.integers(0, 30, (64, 64, 3)).astype(np.uint8)
        pixels[y:y + side, x:x + side] = COLOURS[name]
        Image.fromarray(pixels).save(folder / "JPEGImages" / f"{stem}.jpg", quality=95)
        objects = [(name, (x + 1, y + 1, x + side, y + side), False)]
        (folder / "Annotations" / f"{stem}.xml").write_text(xml_of(stem, objects))
        stems.append(stem)
    listing = folder / "ImageSets" / "Main" / f"{split}.txt"
    listing.write_text("".join(f"{s}\n" for s in stems))
    return stems


def tiny_voc(root: Path, train: int = 8, test: int = 4) -> Path:
    """VOC2007 trainval and test, VOC2012 trainval; returns ``root``."""
    write_voc(root, "2007", "trainval", train, seed=1)
    write_voc(root, "2012", "trainval", train, seed=2)
    write_voc(root, "2007", "test", test, seed=3)
    return root
