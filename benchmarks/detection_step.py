"""Detection training step: moeheads' ``detection`` step against a plain torchvision step.

Both variants train the same Faster R-CNN C4 (torchvision's ``FasterRCNN`` with a
ResNet's stages, built once and copied) on the same batch:

- ``moeheads``: :func:`moeheads.eval.detection.train.train_step` on dataset items
  (uint8 images and VOC-style targets: conversion, the per-image draws of flips, sizes
  and sampling seeds, label shift, learning-rate setting included);
- ``torchvision``: the textbook step on pre-made float images and targets:
  ``sum(model(images, targets).values()).backward()`` and an SGD step.

The variants run interleaved; the ratio of the median step times is checked against
the target (<= 1.05: the protocol adds no overhead of its own). Run:

    .venv/bin/python benchmarks/detection_step.py                  # CPU, ResNet-18, 128 px
    .venv/bin/python benchmarks/detection_step.py --device cuda --backbone resnet50 \\
        --size 800 --batch 16 --rois 512 --roi-size 14
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from moeheads.backbones import create_backbone
from moeheads.eval.detection.detector import build_detector, set_image_sizes
from moeheads.eval.detection.sampling import draw_images
from moeheads.eval.detection.train import train_step

TARGET = 1.05


def _batch(count: int, size: int) -> list:
    generator = torch.Generator().manual_seed(0)
    items = []
    for _ in range(count):
        image = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=generator)
        xy = torch.rand(2, generator=generator) * size / 2
        box = torch.cat([xy, xy + size / 4]).reshape(1, 4)
        items.append((image, {"boxes": box, "labels": torch.tensor([3]),
                              "difficult": torch.tensor([False])}))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rois", type=int, default=64)
    parser.add_argument("--roi-size", type=int, default=7)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    device = torch.device(args.device)
    resnet = create_backbone(f"torchvision:{args.backbone}").module
    model = build_detector(resnet, 20, train_sizes=(args.size,), test_size=args.size,
                           roi_size=args.roi_size, rois_per_image=args.rois).to(device)
    models = {"moeheads": model, "torchvision": copy.deepcopy(model)}
    optims = {k: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for k, m in models.items()}
    for m in models.values():
        m.train()
        set_image_sizes(m, True, (args.size,))
    items = _batch(args.batch, args.size)
    images = [i.float().div(255).to(device) for i, _ in items]
    targets = [{"boxes": t["boxes"].to(device), "labels": (t["labels"] + 1).to(device)}
               for _, t in items]
    generator = torch.Generator().manual_seed(0)

    def plain() -> None:
        loss = sum(models["torchvision"](images, targets).values())
        optims["torchvision"].zero_grad(set_to_none=True)
        loss.backward()
        optims["torchvision"].step()

    def ours() -> None:
        draws = draw_images(generator, len(items), True, (args.size,))
        train_step(models["moeheads"], optims["moeheads"], items, 1e-3, draws, device)

    steps = {"moeheads": ours, "torchvision": plain}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for rep in range(args.reps + 1):
        for name in (list(steps) if rep % 2 else list(reversed(steps))):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            steps[name]()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if rep:  # the first repetition warms up
                times[name].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) for k, v in times.items()}
    for name, value in medians.items():
        print(f"{name:12s} median step {1000 * value:8.1f} ms")
    ratio = medians["moeheads"] / medians["torchvision"]
    verdict = "ok" if ratio <= TARGET else "over target"
    print(f"moeheads / torchvision: {ratio:.3f} (target <= {TARGET}: {verdict})")


if __name__ == "__main__":
    main()
