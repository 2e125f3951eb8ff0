"""Throughput of parametrised views: the workers and device pipelines, and torchvision.

All pipelines draw the same distribution (STAR's augmentations), make V views and
the original of every image and end with normalised float32 tensors:

- ``moeheads workers``: ``ViewsDataset`` (sampling + crop/resize/flip on uint8) in
  DataLoader workers, then the batched ``Photometric`` step in the main process;
- ``moeheads device``: the same views made a batch at a time in the main process
  from images held as one tensor (``views.pipeline: device``), no workers, then the
  same ``Photometric`` step;
- ``torchvision``: ``v2.Compose`` of the same ops, image by image in the workers,
  without recording parameters.

Images/s counts source images (each with V views and the original). It is printed for
the views alone (uint8 ``Views`` batches) and with the photometric step. The workers
pipeline's main process runs the photometric step with one torch thread by default
(``--threads``): the workers already occupy the cores, and with more intra-op threads
than free cores its parallel regions stall whenever a thread is descheduled. The
device pipeline has no workers and runs with ``--device-threads`` (default: as many as
the workers pipeline's main process), so by default it uses fewer cores than the
workers pipeline. Run:

    .venv/bin/python benchmarks/views.py --workers 1   # CPU, side by side
    .venv/bin/python benchmarks/views.py --device cuda # device pipeline + photometric on the GPU
    .venv/bin/python benchmarks/views.py --compare     # device views vs workers views, per pixel
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from moeheads.views import (
    DeviceViews,
    Photometric,
    ViewSampler,
    ViewsDataset,
    build_input_pipeline,
    collate_views,
)
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


class StackedImages(Dataset):
    """``SyntheticImages`` with ``stacked_images()``, as in-memory moeheads datasets have."""

    def __init__(self, data: SyntheticImages) -> None:
        self.data = data
        self.targets = torch.zeros(len(data.images), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.data[index]

    def stacked_images(self) -> torch.Tensor:
        return self.data.images


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


def _median_rate(epochs: int, loader: Iterable, step: Callable[[object], int]) -> float:
    """Median images/s over ``epochs`` epochs after one warm-up epoch."""
    return statistics.median([_epoch_rate(loader, step) for _ in range(epochs + 1)][1:])


def run_cpu(args: argparse.Namespace) -> None:
    options = ViewOptions(size=args.size)
    sampler = ViewSampler(options)
    photometric = Photometric.from_options(options)
    data = SyntheticImages(args.images, args.source)
    common = {"batch_size": args.batch, "num_workers": args.workers, "persistent_workers": True}
    workers = DataLoader(
        ViewsDataset(data, sampler, num_views=args.views, seed=0),
        collate_fn=collate_views,
        **common,
    )
    theirs = DataLoader(TorchvisionViews(data, options, args.views), **common)
    device = build_input_pipeline(
        StackedImages(data), sampler, num_views=args.views, original=True, seed=0,
        index_sampler=range(args.images), batch_size=args.batch, device="cpu",
        pipeline="device",
    ).loader
    main_threads = torch.get_num_threads()
    device_threads = args.device_threads or main_threads

    def count(batch) -> int:
        return batch.views.shape[1]

    def step_ours(batch) -> int:
        return photometric.prepare(batch).views.shape[1]

    def step_theirs(batch) -> int:
        return batch[0].shape[0]

    def on_device(step: Callable[[object], int]) -> float:
        torch.set_num_threads(device_threads)
        try:
            return _median_rate(args.epochs, device, step)
        finally:
            torch.set_num_threads(main_threads)

    rates = {
        ("views", "workers"): _median_rate(args.epochs, workers, count),
        ("views", "device"): on_device(count),
        ("photometric", "workers"): _median_rate(args.epochs, workers, step_ours),
        ("photometric", "device"): on_device(step_ours),
        ("photometric", "torchvision"): _median_rate(args.epochs, theirs, step_theirs),
    }
    print(
        f"CPU, {args.images} images {args.source}px -> {args.size}px, batch {args.batch}, "
        f"{args.views} views + original; workers pipeline: {args.workers} workers + "
        f"{main_threads} main threads; device pipeline: no workers, {device_threads} threads; "
        f"median of {args.epochs} epochs"
    )
    print(f"{'images/s':<34} {'workers':>9} {'device':>9} {'device/workers':>15}")
    for stage, label in (("views", "views (uint8 Views batches)"),
                         ("photometric", "views + photometric (normalised)")):
        w, d = rates[(stage, "workers")], rates[(stage, "device")]
        print(f"{label:<34} {w:9.0f} {d:9.0f} {d / w:14.2f}x")
    tv = rates[("photometric", "torchvision")]
    print(f"torchvision v2 (no params recorded): {tv:.0f} images/s; moeheads workers / "
          f"torchvision: {rates[('photometric', 'workers')] / tv:.2f}")


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

    def timed(fn: Callable[[], object]) -> float:
        for _ in range(3):
            fn()
        sync()
        start = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        sync()
        return (time.perf_counter() - start) / args.repeats

    seconds = timed(lambda: photometric(images, params, order))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"photometric alone on {name}: batch {args.batch} x {args.views} views at {args.size}px: "
        f"{n / seconds:,.0f} view images/s ({args.batch / seconds:,.0f} source images/s)"
    )
    source = SyntheticImages(args.batch, args.source).images.to(device)
    maker = DeviceViews(sampler, num_views=args.views, seed=0)
    indices = list(range(args.batch))
    sampled = maker.sample(indices, [(args.source, args.source)] * args.batch)
    seconds = timed(lambda: maker(source, indices, None, sampled))
    print(f"device views (crop, resize, flip, original) on {name}: "
          f"{args.batch / seconds:,.0f} source images/s")
    seconds = timed(lambda: maker.sample(indices, [(args.source, args.source)] * args.batch))
    print(f"parameter sampling (CPU, main process): {args.batch / seconds:,.0f} images/s")


COMPARE_CASES = [  # (height, width, size, antialias): STL-10, CIFAR, ImageNet-like, MNIST
    (96, 96, 96, True), (32, 32, 32, True), (375, 500, 224, True), (500, 333, 224, True),
    (28, 28, 24, True), (96, 96, 64, False), (375, 500, 96, True), (375, 500, 224, False),
]


def run_compare(args: argparse.Namespace) -> None:
    """Per-pixel difference of the device views (both methods) and the workers' views."""
    from moeheads.views import apply_geometric, center_view, make_views

    device = torch.device(args.device)
    print(f"{'source':>9} {'size':>4} {'antialias':>9} {'method':>6} {'views':>7} "
          f"{'max |diff|':>10} {'pixels differing':>16}")
    for height, width, size, antialias in COMPARE_CASES:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (args.compare_images, 3, height, width),
                               dtype=torch.uint8, generator=g)
        sampler = ViewSampler(size=size, antialias=antialias)
        params = torch.stack([sampler.sample(args.views, height, width, g)[0]
                              for _ in range(len(images))], dim=1)
        expected = torch.cat([
            torch.stack([apply_geometric(image, params[:, b], size, antialias)
                         for b, image in enumerate(images)], dim=1).flatten(0, 1),
            torch.stack([center_view(image, size, antialias) for image in images]),
        ])
        methods = ["taps"] if device.type != "cpu" else ["taps", "loop"]
        for method in methods:
            views, originals = make_views(images.to(device), params.to(device), size,
                                          antialias, method=method)
            made = torch.cat([views.flatten(0, 1), originals]).cpu()
            diff = (made.int() - expected.int()).abs()
            print(f"{height:>4}x{width:<4} {size:>4} {antialias!s:>9} {method:>6} "
                  f"{len(made):>7} {int(diff.max()):>10} {float((diff > 0).float().mean()):>16.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cpu",
        help="cpu: pipelines side by side; cuda: device views and photometric on the GPU"
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
    parser.add_argument("--device-threads", type=int, default=0,
                        help="torch threads of the device pipeline (0: as --threads)")
    parser.add_argument("--compare", action="store_true",
                        help="per-pixel difference of the two pipelines' views instead")
    parser.add_argument("--compare-images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20, help="photometric repeats (--device)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compare:
        run_compare(args)
    elif args.device == "cpu":
        run_cpu(args)
    else:
        run_device(args)


if __name__ == "__main__":
    main()
