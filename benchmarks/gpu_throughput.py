"""Training throughput of the STL-10 STAR recipe on synthetic STL-10-shaped data.

The recipe is the paper's STL-10 setup (torchvision ResNet-18 at 96 px, 16 experts,
``star`` router, ``ntxent`` + ``star_eq`` at temperature 0.2, batch 256, SGD lr 0.03,
momentum 0.9, weight decay 5e-4), built by :func:`moeheads.assembly.build.build_model`.
The data are random uint8 ``[3, 96, 96]`` images held in memory, fed through either
input pipeline the engine has (``--pipeline``): ``workers``
(:class:`~moeheads.views.ViewsDataset`: sampling, crop, resize, flip in DataLoader
workers) or ``device`` (the same views made a batch at a time on the training device
from the images held there as one tensor), then :class:`~moeheads.views.Photometric`
(jitter, grayscale, blur, normalise) on the device. Each step is the engine's:
photometric step, forward under autocast, finiteness check, backward, SGD step, loss
scalars. With channels_last the backbone's weights and every view and original image
are channels-last; with compile the backbone, the expert bank and the router are
compiled as the engine compiles them.

For each configuration (``--configs``: ``fp32``, ``bf16``, ``bf16+cl``,
``bf16+cl+compile``, ...) it prints images/s (source images, each with two views and
the original) and the projected time of 200 epochs of STL-10's 105,000 train +
unlabeled images; first it prints the rate of the input pipeline alone (loader +
photometric step), the ceiling for all. ``--json`` also writes the figures (a failing
configuration is recorded with its error and the others still run). Run:

    .venv/bin/python benchmarks/gpu_throughput.py                     # CUDA, 50 steps each
    .venv/bin/python benchmarks/gpu_throughput.py --pipeline workers --workers 12
    .venv/bin/python benchmarks/gpu_throughput.py --device cpu --steps 2 --configs fp32
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from moeheads.assembly.build import build_model
from moeheads.recipe.schema import Recipe
from moeheads.train.optim import build_optimizer
from moeheads.views import Photometric, PreparedViews, ViewSampler, build_input_pipeline
from moeheads.views.batch import Views

IMAGE_SIZE = 96
EPOCHS = 200
STL10_IMAGES = 105_000


class SyntheticSTL10(Dataset[tuple[torch.Tensor, int]]):
    """``n`` random uint8 images ``[3, 96, 96]`` held in memory, label -1 (unlabeled)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        shape = (n, 3, IMAGE_SIZE, IMAGE_SIZE)
        self.images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], -1

    @property
    def targets(self) -> torch.Tensor:
        """Labels (all -1)."""
        return torch.full((len(self.images),), -1, dtype=torch.int64)

    def stacked_images(self) -> torch.Tensor:
        """The images as one tensor (what the device pipeline holds)."""
        return self.images


def star_stl10(batch: int, bf16: bool, channels_last: bool, compile_: bool = False,
               backbone: str = "torchvision:resnet18") -> Recipe:
    """The STL-10 STAR recipe (data fields are placeholders: the images are synthetic)."""
    return Recipe.model_validate({
        "name": "star_stl10",
        "data": {"dataset": {"name": "stl10", "root": "data/stl10", "split": "train+unlabeled"}},
        "views": {"size": IMAGE_SIZE, "num_views": 2, "original": True},
        "backbone": {"name": backbone},
        "heads": {"num_experts": 16, "out_features": 128, "router": {"name": "star"}},
        "tasks": {
            "inv": {"name": "ntxent", "temperature": 0.2, "weight": 1.0},
            "eq": {"name": "star_eq", "temperature": 0.2, "weight": 1.0},
        },
        "optimizer": {"name": "sgd", "lr": 0.03, "momentum": 0.9, "weight_decay": 5e-4},
        "schedule": {"name": "cosine"},
        "trainer": {"epochs": EPOCHS, "batch_size": batch,
                    "precision": "bf16" if bf16 else "fp32", "channels_last": channels_last,
                    "compile": compile_},
    })


def batches(loader: Iterable[Views]) -> Iterator[Views]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def sync(device: torch.device) -> None:
    """Wait for the device's queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def channels_last(images: torch.Tensor) -> torch.Tensor:
    """``images[..., C, H, W]`` laid out so that every ``[C, H, W]`` image is channels-last.

    ``Tensor.contiguous(memory_format=torch.channels_last)`` accepts only 4-D tensors;
    the views are ``[V, B, C, H, W]``.
    """
    return images.movedim(-3, -1).contiguous().movedim(-1, -3)


def pipeline_rate(
    source: Iterator[Views], photometric: Photometric, device: torch.device, steps: int
) -> float:
    """Images/s of the input pipeline alone: loader + photometric step on the device."""
    next(source)
    sync(device)
    tic = time.perf_counter()
    images = 0
    for batch in itertools.islice(source, steps):
        prepared = photometric.prepare(batch, device)
        images += prepared.views.shape[1]
    sync(device)
    return images / (time.perf_counter() - tic)


def training_rate(
    recipe: Recipe, source: Iterator[Views], photometric: Photometric, device: torch.device,
    steps: int, warmup: int,
) -> float:
    """Images/s of ``steps`` engine training steps after ``warmup`` untimed ones."""
    trainer = recipe.trainer
    torch.manual_seed(recipe.seed)
    model = build_model(recipe, (IMAGE_SIZE, IMAGE_SIZE)).to(device).train()
    if trainer.channels_last:
        model.encoder.backbone.to(memory_format=torch.channels_last)
    if trainer.compile:  # as the engine compiles
        model.encoder.backbone.compile()
        model.encoder.heads.experts.compile()
        model.encoder.heads.router.compile()
    optimizer = build_optimizer(model, recipe.optimizer, trainer.batch_size)
    dtype = torch.bfloat16 if trainer.precision == "bf16" else None
    nonfinite = torch.zeros((), device=device)  # read once at the end, as the engine does

    def step(batch: Views) -> int:
        prepared: PreparedViews = photometric.prepare(batch, device)
        if trainer.channels_last:
            prepared.views = channels_last(prepared.views)
            if prepared.original is not None:
                prepared.original = channels_last(prepared.original)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(prepared)
        loss = out.loss.loss
        nonfinite.add_((~torch.isfinite(loss.detach())).float())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        out.loss.detached()  # the engine keeps the step's values on the device
        return prepared.views.shape[1]

    for batch in itertools.islice(source, warmup):
        step(batch)
    sync(device)
    tic = time.perf_counter()
    images = sum(step(batch) for batch in itertools.islice(source, steps))
    sync(device)
    rate = images / (time.perf_counter() - tic)
    if nonfinite.item():
        raise FloatingPointError("the loss became non-finite")
    return rate


def projected_hours(rate: float, batch: int) -> float:
    """Hours of 200 epochs of STL-10's train + unlabeled split (full batches only)."""
    per_epoch = STL10_IMAGES // batch * batch
    return EPOCHS * per_epoch / rate / 3600


def parse_config(name: str) -> tuple[bool, bool, bool]:
    """``fp32``/``bf16`` plus optional ``+cl`` (channels_last) and ``+compile``."""
    parts = name.split("+")
    if parts[0] not in ("fp32", "bf16") or not set(parts[1:]) <= {"cl", "compile"}:
        raise SystemExit(f"unknown configuration {name!r} (e.g. bf16+cl+compile)")
    return parts[0] == "bf16", "cl" in parts, "compile" in parts


def main() -> None:
    """Measure the input pipeline, then each configuration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--pipeline", choices=["workers", "device"], default="device",
                        help="where views are made (views.pipeline)")
    parser.add_argument("--configs", default="fp32,bf16,fp32+cl,bf16+cl,bf16+cl+compile",
                        help="comma-separated: fp32|bf16 [+cl] [+compile]")
    parser.add_argument("--batch", type=int, default=256, help="images per step")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps per configuration (default: 5 on CUDA, 1 on CPU)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="DataLoader worker processes (workers pipeline)")
    parser.add_argument("--images", type=int, default=4096,
                        help="synthetic images held in memory (the loader cycles over them)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--backbone", default="torchvision:resnet18",
                        help="another backbone, e.g. small_cnn for a quick check")
    args = parser.parse_args()
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    flags = {name: parse_config(name) for name in configs}

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    warmup = args.warmup if args.warmup is not None else (5 if device.type == "cuda" else 1)
    base = star_stl10(args.batch, bf16=False, channels_last=False)
    sampler = ViewSampler(base.views.view_options())
    inputs = build_input_pipeline(
        SyntheticSTL10(args.images), sampler, num_views=2, original=True, seed=base.seed,
        index_sampler=RandomSampler(range(args.images)), batch_size=args.batch,
        device=device, pipeline=args.pipeline,
        num_workers=args.workers if args.pipeline == "workers" else 0,
    )
    loader = inputs.loader
    if args.pipeline == "workers":  # full batches only, as the engine's sampler gives
        loader = DataLoader(
            inputs.views, batch_size=args.batch, sampler=RandomSampler(inputs.views),
            drop_last=True, collate_fn=inputs.loader.collate_fn, num_workers=args.workers,
            pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
        )
    source = batches(loader)
    photometric = Photometric.from_options(sampler.options).to(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    workers = f"{args.workers} workers" if args.pipeline == "workers" else "no workers"
    print(f"STAR STL-10 recipe, {args.backbone} at {IMAGE_SIZE} px, batch {args.batch}, {name}, "
          f"{args.pipeline} pipeline ({workers}), {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"{args.steps} timed steps after {warmup} warm-up steps per configuration\n")

    result: dict = {"device": name, "pipeline": args.pipeline, "batch": args.batch,
                    "workers": args.workers if args.pipeline == "workers" else 0,
                    "steps": args.steps, "rows": []}

    def write() -> None:  # after each figure, so a run cut short keeps what it measured
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))

    rate = pipeline_rate(source, photometric, device, args.steps)
    result["input_images_per_s"] = rate
    write()
    print(f"{'input pipeline alone':<28} {rate:9.1f} images/s")
    print(f"{'configuration':<28} {'images/s':>9} {'200 epochs (h)':>15}")
    for config in configs:
        bf16, channels_last, compile_ = flags[config]
        recipe = star_stl10(args.batch, bf16, channels_last, compile_, args.backbone)
        row: dict = {"config": config}
        try:
            tic = time.perf_counter()
            rate = training_rate(recipe, source, photometric, device, args.steps, warmup)
            row.update(images_per_s=rate, hours_200_epochs=projected_hours(rate, args.batch),
                       seconds=time.perf_counter() - tic)
            print(f"{config:<28} {rate:9.1f} {row['hours_200_epochs']:15.2f}", flush=True)
        except Exception as error:  # one failing configuration must not lose the others
            row["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            traceback.print_exc()
            print(f"{config:<28} failed: {row['error']}", flush=True)
        result["rows"].append(row)
        write()


if __name__ == "__main__":
    main()
