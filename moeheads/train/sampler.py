"""A deterministic, resumable, rank-sharded sampler of training indices."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from moeheads.errors import ConfigError


class EpochSampler(Sampler[int]):
    """Shuffles ``[0, length)`` with a generator seeded by ``(seed, epoch)``.

    Each epoch keeps ``steps * global_batch`` indices (the rest is dropped), and rank r
    takes rows ``r, r + world, ...`` of every global batch, so the union of the ranks'
    batches is exactly the single-process batch. ``start_step`` skips the first steps
    of an epoch, to resume mid-epoch.

    Args:
        length: Dataset length.
        global_batch: Images per optimiser step over all ranks (per micro-batch).
        seed: Seed of the order.
        rank: This process's rank.
        world_size: Number of processes.
        max_steps: Cap the steps of an epoch.
    """

    def __init__(
        self, length: int, global_batch: int, seed: int = 0, rank: int = 0,
        world_size: int = 1, max_steps: int | None = None,
    ) -> None:
        if global_batch % world_size:
            raise ConfigError(
                f"trainer.batch_size {global_batch} must be divisible by the "
                f"{world_size} processes"
            )
        steps = length // global_batch
        if steps == 0:
            raise ConfigError(
                f"the dataset has {length} images, fewer than one batch of {global_batch}"
            )
        self.length = length
        self.global_batch = global_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.steps = min(steps, max_steps) if max_steps else steps
        self.epoch = 0
        self.start_step = 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Choose the epoch (and the first step) of the next iteration."""
        self.epoch = epoch
        self.start_step = start_step

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator)[: self.steps * self.global_batch]
        batches = order.view(self.steps, self.global_batch)[self.start_step :]
        mine = batches[:, self.rank :: self.world_size]
        return iter(mine.reshape(-1).tolist())

    def __len__(self) -> int:
        return (self.steps - self.start_step) * (self.global_batch // self.world_size)
