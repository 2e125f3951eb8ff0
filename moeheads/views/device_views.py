"""Batches of views made on the training device, from images in memory or decoded there."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from moeheads.errors import ConfigError
from moeheads.views.batch import Views
from moeheads.views.dataset import sample_seed
from moeheads.views.device import Method, make_views
from moeheads.views.jpeg import EncodedFiles, collate_encoded, decode_images
from moeheads.views.sampler import ViewSampler


class DeviceViews:
    """Makes :class:`~moeheads.views.batch.Views` of a batch of images on their device.

    Parameters come from the same per-sample generators as in
    :class:`~moeheads.views.dataset.ViewsDataset` (seeded by
    ``sample_seed(seed, epoch, index)``), so for equal seeds both give the same
    parameters and (tested) the same uint8 views.

    Args:
        sampler: The view sampler.
        num_views: Views per image V (>= 1).
        original: Also make the un-augmented original.
        seed: Base seed; ``None`` draws one from torch's global generator.
        method: ``auto`` (one resize call per view on CPU, batched taps elsewhere),
            ``taps`` or ``loop``.
    """

    def __init__(self, sampler: ViewSampler, num_views: int = 2, original: bool = True,
                 seed: int | None = None, method: Method = "auto") -> None:
        if num_views < 1:
            raise ConfigError(f"num_views must be >= 1, got {num_views}")
        self.sampler = sampler
        self.num_views = num_views
        self.original = original
        self.seed = int(torch.randint(0, 2**62, ()).item()) if seed is None else seed
        self.method: Method = method
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch before iterating, so each epoch draws new views."""
        self.epoch = epoch

    def sample(self, indices: Sequence[int], sizes: Sequence[tuple[int, int]]
               ) -> tuple[Tensor, Tensor]:
        """Parameters ``[V, B, 11]`` and jitter orders ``[V, B, 4]`` of items ``indices``."""
        params, orders = [], []
        for index, (height, width) in zip(indices, sizes, strict=True):
            generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))
            p, o = self.sampler.sample(self.num_views, height, width, generator)
            params.append(p)
            orders.append(o)
        return torch.stack(params, dim=1), torch.stack(orders, dim=1)

    def __call__(self, images: Tensor | Sequence[Tensor], indices: Sequence[int],
                 labels: Tensor | None = None,
                 sampled: tuple[Tensor, Tensor] | None = None) -> Views:
        """The views of ``images`` (items ``indices``), on the images' device.

        Args:
            images: uint8 ``[B, C, H, W]``, or a list of ``[C, H, W]`` of any sizes.
            indices: Dataset index of each image (seeds its views).
            labels: ``[B]`` labels, or ``None``.
            sampled: Parameters and orders from :meth:`sample`, when drawn ahead.
        """
        size, antialias = self.sampler.size, self.sampler.options.antialias
        if isinstance(images, Tensor):
            groups = {tuple(images.shape[-2:]): (list(range(len(indices))), images)}
        else:
            groups = {}
            for i, image in enumerate(images):
                groups.setdefault(tuple(image.shape[-2:]), ([], []))[0].append(i)
            groups = {k: (rows, torch.stack([images[i] for i in rows]))
                      for k, (rows, _) in groups.items()}
        device = next(iter(groups.values()))[1].device
        if sampled is None:
            sizes = [None] * len(indices)
            for shape, (rows, _) in groups.items():
                for i in rows:
                    sizes[i] = shape
            sampled = self.sample(indices, sizes)
        params, order = sampled
        v, b = self.num_views, len(indices)
        views = torch.empty((v, b, 3, size, size), dtype=torch.uint8, device=device)
        originals = (torch.empty((b, 3, size, size), dtype=torch.uint8, device=device)
                     if self.original else None)
        device_params = params.to(device, non_blocking=True)
        for rows, stack in groups.values():
            if len(groups) == 1:
                rows_p = device_params
            else:
                rows_p = device_params[:, torch.tensor(rows, device=device)]
            made, made_original = make_views(stack, rows_p, size, antialias, self.original,
                                             self.method)
            if len(groups) == 1:
                views, originals = made, made_original
            else:
                index = torch.tensor(rows, device=device)
                views[:, index] = made
                if originals is not None:
                    originals[index] = made_original
        return Views(views=views, params=device_params, jitter_order=order.to(device),
                     original=originals,
                     labels=None if labels is None else labels.to(device, non_blocking=True))


def _chunks(indices: Iterable[int], size: int) -> Iterator[list[int]]:
    chunk: list[int] = []
    for index in indices:
        chunk.append(index)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def needs_pinning(images: Tensor, device: torch.device) -> bool:
    """Whether ``images`` are host memory, not yet pinned, that batches copy to a GPU."""
    return images.device.type == "cpu" and device.type == "cuda" and not images.is_pinned()


class ResidentLoader:
    """Batches of views of images held in one uint8 tensor, with no worker processes.

    The tensor lives on the training device, or in pinned host memory when the device
    is too small for it (each batch's rows are then copied over in one transfer). The
    next batch's parameters are drawn in a background thread while this one trains.

    Args:
        images: uint8 ``[N, C, H, W]`` (C = 1 or 3).
        targets: ``[N]`` labels (int64), or ``None``.
        views: Makes the views.
        index_sampler: Yields the dataset indices of one epoch (e.g.
            :class:`~moeheads.train.sampler.EpochSampler`), ``len`` of them.
        batch_size: Images per batch.
        device: The training device.
    """

    def __init__(self, images: Tensor, targets: Tensor | None, views: DeviceViews,
                 index_sampler: Any, batch_size: int, device: torch.device | str) -> None:
        self.device = torch.device(device)
        if needs_pinning(images, self.device):
            images = images.pin_memory()
        self.images = images
        self.targets = targets
        self.views = views
        self.index_sampler = index_sampler
        self.batch_size = batch_size

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the views (the index sampler is set by its owner)."""
        self.views.set_epoch(epoch)

    def __len__(self) -> int:
        return -(-len(self.index_sampler) // self.batch_size)

    def _rows(self, chunk: list[int]) -> Tensor:
        index = torch.tensor(chunk)
        if self.images.device.type == "cpu" and self.device.type != "cpu":
            rows = torch.empty((len(chunk), *self.images.shape[1:]), dtype=torch.uint8,
                               pin_memory=True)
            torch.index_select(self.images, 0, index, out=rows)
            return rows.to(self.device, non_blocking=True)
        return self.images.index_select(0, index.to(self.images.device))

    def __iter__(self) -> Iterator[Views]:
        size = tuple(self.images.shape[-2:])
        chunks = list(_chunks(self.index_sampler, self.batch_size))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            ahead = pool.submit(self.views.sample, chunks[0], [size] * len(chunks[0])) \
                if chunks else None
            for k, chunk in enumerate(chunks):
                sampled = ahead.result() if ahead is not None else None
                if k + 1 < len(chunks):
                    nxt = chunks[k + 1]
                    ahead = pool.submit(self.views.sample, nxt, [size] * len(nxt))
                labels = None if self.targets is None else self.targets[torch.tensor(chunk)]
                yield self.views(self._rows(chunk), chunk, labels, sampled)


class JpegLoader:
    """Batches of views of JPEG files: workers read bytes, the device decodes and crops.

    Args:
        dataset: A dataset with ``encoded_file(index)`` paths and ``targets``.
        views: Makes the views.
        index_sampler: Yields the dataset indices of one epoch.
        batch_size: Images per batch.
        device: Where images are decoded and cropped.
        num_workers: DataLoader processes reading the files.
        pin_memory: Pin the bytes (CUDA only).
    """

    def __init__(self, dataset: Any, views: DeviceViews, index_sampler: Any, batch_size: int,
                 device: torch.device | str, num_workers: int = 0,
                 pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.views = views
        self.device = torch.device(device)
        self.loader = DataLoader(
            EncodedFiles(dataset), batch_size=batch_size, sampler=index_sampler,
            collate_fn=collate_encoded, num_workers=num_workers,
            pin_memory=pin_memory and self.device.type == "cuda",
            persistent_workers=num_workers > 0,
            generator=torch.Generator().manual_seed(views.seed),  # not the global RNG
        )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the views."""
        self.views.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Views]:
        for indices, data, labels in self.loader:
            sources = [str(self.dataset.encoded_file(i)) for i in indices]
            images = decode_images(data, self.device, sources)
            yield self.views(images, indices, labels)
