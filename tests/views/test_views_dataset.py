"""ViewsDataset + collate_views + Photometric.prepare: shapes, seeding, workers."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from moeheads.views import Photometric, ViewSampler, ViewsDataset, collate_views


class _Images(torch.utils.data.Dataset):
    def __init__(self, n: int = 12, labeled: bool = True) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (n, 3, 40, 44), dtype=torch.uint8, generator=g)
        self.labeled = labeled

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return (self.images[i], i % 3 - 1) if self.labeled else self.images[i]


def _params(loader: DataLoader) -> torch.Tensor:
    return torch.cat([batch.params for batch in loader], dim=1)


@pytest.mark.parametrize("num_views", [2, 3])
@pytest.mark.parametrize("original", [True, False])
def test_shapes(num_views: int, original: bool) -> None:
    sampler = ViewSampler(size=24)
    ds = ViewsDataset(_Images(), sampler, num_views=num_views, original=original, seed=0)
    batch = next(iter(DataLoader(ds, batch_size=5, collate_fn=collate_views)))
    assert batch.views.shape == (num_views, 5, 3, 24, 24) and batch.views.dtype == torch.uint8
    assert batch.params.shape == (num_views, 5, 11) and batch.jitter_order.shape == (
        num_views,
        5,
        4,
    )
    assert batch.labels.tolist() == [-1, 0, 1, -1, 0]
    assert (batch.original is not None) == original
    prepared = Photometric.from_options(sampler.options).prepare(batch, "cpu")
    assert (
        prepared.views.shape == (num_views, 5, 3, 24, 24) and prepared.views.dtype == torch.float32
    )
    if original:
        assert prepared.original.shape == (5, 3, 24, 24)
        assert prepared.original.dtype == torch.float32
    else:
        assert prepared.original is None


def test_unlabeled_dataset_gives_no_labels() -> None:
    ds = ViewsDataset(_Images(labeled=False), ViewSampler(size=16), seed=0)
    assert collate_views([ds[0], ds[1]]).labels is None


def test_seed_repeats_and_workers_do_not_change_views() -> None:
    sampler = ViewSampler(size=16)

    def loader(workers: int, seed: int = 3) -> DataLoader:
        ds = ViewsDataset(_Images(), sampler, seed=seed)
        return DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate_views)

    serial = _params(loader(0))
    parallel = _params(loader(2))
    assert torch.equal(serial, parallel)
    assert torch.equal(parallel, _params(loader(2)))
    assert not torch.equal(serial, _params(loader(0, seed=4)))
    # Every sample (and view) gets its own stream: no two parameter rows coincide.
    rows = serial.reshape(-1, 11)
    assert torch.unique(rows, dim=0).shape[0] == rows.shape[0]


def test_set_epoch_changes_views_in_persistent_workers() -> None:
    ds = ViewsDataset(_Images(8), ViewSampler(size=16), seed=1)
    loader = DataLoader(
        ds, batch_size=4, num_workers=2, persistent_workers=True, collate_fn=collate_views
    )
    first = _params(loader)
    ds.set_epoch(1)
    second = _params(loader)
    ds.set_epoch(0)
    again = _params(loader)
    assert not torch.equal(first, second)
    assert torch.equal(first, again)
