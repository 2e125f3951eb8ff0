"""Wrap an image dataset so each item is a sample of views with their parameters."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from moeheads.errors import ConfigError
from moeheads.views.batch import ViewSample
from moeheads.views.geometric import apply_geometric, center_view, to_image_tensor
from moeheads.views.sampler import ViewSampler

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit generator seed for sample ``index`` of ``epoch`` (splitmix64 hashing).

    Seeds depend on nothing else, so views are the same for any number of
    DataLoader workers and any batch order.
    """
    x = 0
    for value in (seed, epoch, index):
        x = _splitmix64(x ^ (value & _MASK64))
    return x >> 1


class ViewsDataset(Dataset[ViewSample]):
    """Views of the images of ``dataset``, with their parameters.

    Item ``index`` draws its parameters from a generator seeded with
    ``sample_seed(seed, epoch, index)`` and applies the geometric part (crop,
    resize, flip). Use :func:`~moeheads.views.batch.collate_views` as the
    DataLoader's ``collate_fn`` and :class:`~moeheads.views.photometric.Photometric`
    on the training device.

    Args:
        dataset: Items ``(image, label)`` or ``image``; an image is a uint8
            ``[3, H, W]`` tensor or a PIL image, a label an int (-1 when unlabeled).
        sampler: The view sampler (its options give size and distribution).
        num_views: Views per image V (>= 1).
        original: Also return the un-augmented original (resize + centre crop).
        seed: Base seed; ``None`` draws one from torch's global generator.

    Example:
        >>> images = [(torch.zeros(3, 40, 50, dtype=torch.uint8), 0)] * 4
        >>> ds = ViewsDataset(images, ViewSampler(size=32), num_views=3, seed=0)
        >>> ds[0].views.shape, ds[0].params.shape
        (torch.Size([3, 3, 32, 32]), torch.Size([3, 11]))
    """

    def __init__(
        self,
        dataset: Any,
        sampler: ViewSampler,
        num_views: int = 2,
        original: bool = True,
        seed: int | None = None,
    ) -> None:
        if num_views < 1:
            raise ConfigError(f"num_views must be >= 1, got {num_views}")
        self.dataset = dataset
        self.sampler = sampler
        self.num_views = num_views
        self.original = original
        self.seed = int(torch.randint(0, 2**62, ()).item()) if seed is None else seed
        # Shared memory, so set_epoch also reaches persistent DataLoader workers.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        """The current epoch (part of every sample's seed)."""
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch before iterating, so each epoch draws new views."""
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> ViewSample:
        return self._sample(index, self.dataset[index])

    def __getitems__(self, indices: list[int]) -> list[ViewSample]:
        """Several samples; fetches their images in one call when the dataset can."""
        fetch = getattr(self.dataset, "__getitems__", None)
        items = fetch(indices) if fetch is not None else [self.dataset[i] for i in indices]
        return [self._sample(index, item) for index, item in zip(indices, items, strict=True)]

    def _sample(self, index: int, item: Any) -> ViewSample:
        image, label = item if isinstance(item, tuple) else (item, None)
        image = to_image_tensor(image)
        generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))
        height, width = image.shape[-2:]
        params, order = self.sampler.sample(self.num_views, height, width, generator)
        size, antialias = self.sampler.size, self.sampler.options.antialias
        return ViewSample(
            views=apply_geometric(image, params, size, antialias),
            params=params,
            jitter_order=order,
            original=center_view(image, size, antialias) if self.original else None,
            label=None if label is None else int(label),
        )
