"""The ``Views`` batch type and the collate function that builds it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from moeheads.errors import ConfigError, ShapeError


@dataclass
class ViewSample:
    """The views of one image, as a ``ViewsDataset`` item.

    Attributes:
        views: uint8 ``[V, 3, S, S]``.
        params: float32 ``[V, 11]`` (layout in `moeheads.views.layout`).
        jitter_order: int64 ``[V, 4]``.
        original: uint8 ``[3, S, S]`` (resize + centre crop), or ``None``.
        label: Class index (-1 for an unlabeled image), or ``None`` when the dataset
            yields images without labels.
    """

    views: Tensor
    params: Tensor
    jitter_order: Tensor
    original: Tensor | None = None
    label: int | None = None


@dataclass
class Views:
    """A batch of B images with V views each, before the photometric step.

    Attributes:
        views: uint8 ``[V, B, 3, S, S]`` (geometric part applied).
        params: float32 ``[V, B, 11]``, all parameters of each view.
        jitter_order: int64 ``[V, B, 4]``, the order of the jitter ops.
        original: uint8 ``[B, 3, S, S]``, or ``None``.
        labels: int64 ``[B]`` (-1 where unlabeled), or ``None`` for a dataset without labels.
    """

    views: Tensor
    params: Tensor
    jitter_order: Tensor
    original: Tensor | None = None
    labels: Tensor | None = None

    @property
    def num_views(self) -> int:
        """Number of views V."""
        return self.views.shape[0]

    @property
    def batch_size(self) -> int:
        """Number of images B."""
        return self.views.shape[1]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Views:
        """A copy with every tensor on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Views:
        """A copy in pinned memory (called by ``DataLoader(pin_memory=True)``)."""
        return self._map(Tensor.pin_memory)

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Views:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Views(**{k: None if v is None else fn(v) for k, v in values.items()})


def collate_views(samples: Sequence[ViewSample]) -> Views:
    """Stack ``ViewSample`` items into one :class:`Views` batch (a picklable collate_fn)."""
    if not samples:
        raise ConfigError("collate_views needs at least one sample")
    counts = {s.views.shape[0] for s in samples}
    if len(counts) != 1:
        raise ShapeError(f"all samples must have the same number of views, got {sorted(counts)}")
    has_original = {s.original is not None for s in samples}
    if len(has_original) != 1:
        raise ConfigError("either every sample or none has an original image")
    originals = [s.original for s in samples if s.original is not None]
    labels = [s.label for s in samples]
    return Views(
        views=torch.stack([s.views for s in samples], dim=1),
        params=torch.stack([s.params for s in samples], dim=1),
        jitter_order=torch.stack([s.jitter_order for s in samples], dim=1),
        original=torch.stack(originals) if originals else None,
        labels=None if None in labels else torch.tensor(labels, dtype=torch.int64),
    )
