"""Choosing and building the input pipeline: DataLoader workers or views made on the device.

``workers``: :class:`~moeheads.views.dataset.ViewsDataset` crops, resizes and flips each
image in DataLoader worker processes (any dataset). ``device``: the training process
makes every view of a batch at once on the training device, from images held as one
uint8 tensor (datasets with ``stacked_images()``: STL-10, CIFAR, Fashion-MNIST,
synthetic shapes) or from JPEG files whose bytes the workers read and the device
decodes (folder, ImageNet-100). ``auto`` is ``device`` on CUDA where the dataset
allows it and ``workers`` otherwise. Both yield :class:`~moeheads.views.batch.Views`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader

from moeheads.errors import ConfigError
from moeheads.views.batch import collate_views
from moeheads.views.dataset import ViewsDataset
from moeheads.views.device_views import DeviceViews, JpegLoader, ResidentLoader
from moeheads.views.jpeg import is_jpeg_dataset
from moeheads.views.sampler import ViewSampler

Pipeline = Literal["workers", "device", "auto"]

DEVICE_SHARE = 0.5
"""Largest share of the free device memory the stacked images may take (else pinned host)."""


@dataclass
class InputPipeline:
    """What the training loop iterates, and what it tells the epoch.

    Attributes:
        loader: Yields :class:`~moeheads.views.batch.Views` batches.
        views: Has ``set_epoch(epoch)``.
        kind: ``workers``, ``device-memory`` or ``device-jpeg``.
    """

    loader: Any
    views: Any
    kind: str


def _device_source(dataset: Any) -> tuple[str, Any] | None:
    """``("memory", stacked images)``, ``("jpeg", None)`` or ``None`` for ``dataset``."""
    stack = getattr(dataset, "stacked_images", None)
    images = stack() if stack is not None else None
    if images is not None:
        return "memory", images
    if getattr(dataset, "skip_corrupt", False):
        return None
    if is_jpeg_dataset(dataset):
        return "jpeg", None
    return None


def place_images(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Stacked images on ``device`` when they fit in ``DEVICE_SHARE`` of its free memory,
    else in host memory (pinned by the loader)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if images.numel() > DEVICE_SHARE * free:
            return images
    return images.to(device)


def build_input_pipeline(
    dataset: Any,
    sampler: ViewSampler,
    *,
    num_views: int,
    original: bool,
    seed: int,
    index_sampler: Any,
    batch_size: int,
    device: torch.device | str,
    pipeline: Pipeline = "workers",
    num_workers: int = 0,
    pin_memory: bool = True,
) -> InputPipeline:
    """The input pipeline ``pipeline`` names for ``dataset`` on ``device``.

    Args:
        dataset: Items ``(image, label)``.
        sampler: The view sampler.
        num_views: Views per image.
        original: Also make the un-augmented original.
        seed: Base seed of the views.
        index_sampler: Yields this process's dataset indices of an epoch.
        batch_size: Images per batch (per process).
        device: The training device.
        pipeline: ``workers``, ``device`` or ``auto``.
        num_workers: DataLoader processes (the workers pipeline; file reading for JPEGs).
        pin_memory: Pin host memory (CUDA only).

    Raises:
        ConfigError: ``device`` for a dataset that is neither stacked nor JPEG files.
    """
    device = torch.device(device)
    source = None
    if pipeline == "device" or (pipeline == "auto" and device.type == "cuda"):
        source = _device_source(dataset)
        if source is None and pipeline == "device":
            raise ConfigError(
                "views.pipeline: device needs a dataset held in memory (stl10, cifar, "
                "fashion_mnist, synthetic_shapes) or JPEG files without skip_corrupt; "
                "use workers (or auto)"
            )
    if source is None:
        return _worker_pipeline(dataset, sampler, num_views, original, seed, index_sampler,
                                batch_size, num_workers, pin_memory and device.type == "cuda")
    maker = DeviceViews(sampler, num_views, original=original, seed=seed)
    kind, images = source
    if kind == "memory":
        targets = getattr(dataset, "targets", None)
        loader = ResidentLoader(place_images(images, device), targets, maker, index_sampler,
                                batch_size, device)
        return InputPipeline(loader, maker, "device-memory")
    loader = JpegLoader(dataset, maker, index_sampler, batch_size, device, num_workers,
                        pin_memory)
    return InputPipeline(loader, maker, "device-jpeg")


def _worker_pipeline(dataset: Any, sampler: ViewSampler, num_views: int, original: bool,
                     seed: int, index_sampler: Any, batch_size: int, num_workers: int,
                     pin_memory: bool) -> InputPipeline:
    """Views made in DataLoader worker processes, image by image."""
    views = ViewsDataset(dataset, sampler, num_views, original=original, seed=seed)
    loader = DataLoader(
        views, batch_size=batch_size, sampler=index_sampler, collate_fn=collate_views,
        num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0,
        # its own generator: starting an epoch's iterator then draws no number from the
        # global RNG, so a run resumed mid-epoch continues the same random stream
        generator=torch.Generator().manual_seed(seed),
    )
    return InputPipeline(loader, views, "workers")
