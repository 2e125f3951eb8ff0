"""Throughput of parametrised views against a plain torchvision.transforms.v2 pipeline.

Both pipelines draw the same distribution (STAR's augmentations), make V views and
the original of every image and end with normalised float32 tensors:

- ``moeheads``: ``ViewsDataset`` (sampling + crop/resize/flip on uint8) in
  DataLoader workers, then the batched ``Photometric`` step in the main process;
- ``torchvision``: ``v2.Compose`` of the same ops, image by image in the workers,
  without recording parameters.

Images/s counts source images (each with V views and the original). The main
process runs the photometric step with one torch thread by default (``--threads``):
the workers already occupy the cores, and with more intra-op threads than free
cores its parallel regions stall whenever a thread is descheduled. Run:

    .venv/bin/python benchmarks/views.py               # CPU, side by side
    .venv/bin/python benchmarks/views.py --device cuda # + photometric alone on the GPU
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from moeheads.views import Photometric, ViewSampler, ViewsDataset, collate_views
from moeheads.views.options import ViewOptions


class SyntheticImages(Dataset):
    """``n`` random uint8 images ``[3, side, side]`` held in memory, label 0."""

    def __init__(self, n: int, side: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], 0


class TorchvisionViews(Dataset):
    """V views plus the original of each image, by a torchvision v2 pipeline."""

    def __init__(self, dataset: Dataset, options: ViewOptions, num_views: int) -> None:
        o = options
        normalize = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(o.mean, o.std)]
        self.dataset = dataset
        self.num_views = num_views
        self.augment = v2.Compose(
            [
                v2.RandomResizedCrop(o.size, scale=o.scale, ratio=o.ratio, antialias=True),
                v2.RandomHorizontalFlip(o.flip_p),
                v2.RandomApply(
                    [v2.ColorJitter(o.brightness, o.contrast, o.saturation, o.hue)], o.jitter_p
                ),
                v2.RandomGrayscale(o.grayscale_p),
                v2.RandomApply([v2.GaussianBlur(o.kernel_size, o.blur_sigma)], o.blur_p),
                *normalize,
            ]
        )
        self.original = v2.Compose(
            [v2.Resize(o.size, antialias=True), v2.CenterCrop(o.size), *normalize]
        )

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, label = self.dataset[index]
        views = torch.stack([self.augment(image) for _ in range(self.num_views)])
        return views, self.original(image), label


def _epoch_rate(batches: Iterable, step: Callable[[object], int]) -> float:
    start, images = time.perf_counter(), 0
    for batch in batches:
        images += step(batch)
    return images / (time.perf_counter() - start)


def run_cpu(args: argparse.Namespace) -> None:
    options = ViewOptions(size=args.size)
    sampler = ViewSampler(options)
    photometric = Photometric.from_options(options)
    data = SyntheticImages(args.images, args.source)
    common = {"batch_size": args.batch, "num_workers": args.workers, "persistent_workers": True}
    ours = DataLoader(
        ViewsDataset(data, sampler, num_views=args.views, seed=0),
        collate_fn=collate_views,
        **common,
    )
    theirs = DataLoader(TorchvisionViews(data, options, args.views), **common)

    def step_ours(batch) -> int:
        return photometric.prepare(batch).views.shape[1]

    def step_theirs(batch) -> int:
        return batch[0].shape[0]

    rates: dict[str, list[float]] = {"moeheads": [], "torchvision": []}
    for epoch in range(args.epochs + 1):  # epoch 0 warms up workers and caches
        for name, loader, step in (
            ("moeheads", ours, step_ours),
            ("torchvision", theirs, step_theirs),
        ):
            rate = _epoch_rate(loader, step)
            if epoch:
                rates[name].append(rate)
    ours_rate, theirs_rate = (statistics.median(rates[k]) for k in ("moeheads", "torchvision"))
    print(
        f"CPU, {args.images} images {args.source}px -> {args.size}px, batch {args.batch}, "
        f"{args.views} views + original, {args.workers} workers, "
        f"{torch.get_num_threads()} main threads, median of {args.epochs} epochs"
    )
    print(f"  moeheads (params recorded): {ours_rate:8.0f} images/s")
    print(f"  torchvision v2:             {theirs_rate:8.0f} images/s")
    print(f"  ratio: {ours_rate / theirs_rate:.2f}")


def run_device(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    options = ViewOptions(size=args.size)
    sampler = ViewSampler(options)
    photometric = Photometric.from_options(options).to(device)
    n = args.views * args.batch
    params, order = sampler.sample(n, args.size, args.size, torch.Generator().manual_seed(0))
    images = torch.randint(0, 256, (n, 3, args.size, args.size), dtype=torch.uint8)
    images, params, order = images.to(device), params.to(device), order.to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        photometric(images, params, order)
    sync()
    start = time.perf_counter()
    for _ in range(args.repeats):
        photometric(images, params, order)
    sync()
    seconds = (time.perf_counter() - start) / args.repeats
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"photometric alone on {name}: batch {args.batch} x {args.views} views at {args.size}px: "
        f"{n / seconds:,.0f} view images/s ({args.batch / seconds:,.0f} source images/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cpu", help="cpu: side by side; cuda: photometric alone"
    )
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--source", type=int, default=110, help="side of the synthetic images")
    parser.add_argument("--size", type=int, default=96, help="output side")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the main process (0: torch's default); the workers already "
        "occupy the cores, so more threads oversubscribe them and stall the batched step",
    )
    parser.add_argument("--repeats", type=int, default=20, help="photometric repeats (--device)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu":
        run_cpu(args)
    else:
        run_device(args)


if __name__ == "__main__":
    main()
