"""Process-group set-up for torchrun (``env://``) and the single-process case."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from moeheads.errors import ConfigError, MoeheadsError

T = TypeVar("T")


@dataclass
class DistContext:
    """Where this process runs and how many run beside it.

    Attributes:
        rank: Global rank (0 in a single process).
        world_size: Number of processes.
        local_rank: Rank on this node (selects the CUDA device).
        device: The device this process trains on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (which writes files and logs)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every process (no-op in a single process)."""
        if self.distributed:
            dist.barrier()

    def mean(self, value: float) -> float:
        """The mean of a float over processes."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._reduce_device())
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of ``tensor`` over processes (a new tensor on ``tensor``'s device)."""
        if not self.distributed:
            return tensor.clone()
        reduced = tensor.to(self._reduce_device(), copy=True)
        dist.all_reduce(reduced)
        return reduced.to(tensor.device)

    def broadcast_object(self, obj: object) -> object:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, compute: Callable[[], T],
                errors: tuple[type[Exception], ...] = (MoeheadsError,)) -> T:
        """``compute()``, run on rank 0 alone, on every rank; so is an error of one of
        ``errors`` that it raises (raised on every rank), so that no rank waits for a value
        that never comes. All ranks call it."""
        outcome: object = None
        if self.is_main:
            try:
                outcome = compute()
            except errors as error:
                outcome = error
        shared = self.broadcast_object(outcome)
        if isinstance(shared, errors):
            raise shared
        return shared  # type: ignore[return-value]

    def gather_object(self, obj: object) -> list[object] | None:
        """Every rank's ``obj`` in rank order on rank 0 (``None`` elsewhere); all ranks call it."""
        if not self.distributed:
            return [obj]
        box: list[object] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, box, dst=0)
        return box

    def _reduce_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def resolve_device(spec: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when available, else ``cpu``; otherwise ``spec``.

    ``cuda`` without an index is ``cuda:<local_rank>``.

    Raises:
        ConfigError: CUDA is asked for but missing, or an explicit ``cuda:N`` is given to
            several processes (each would train on the same GPU).
    """
    if spec == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if device.index is not None and world_size > 1:
            raise ConfigError(
                f"trainer.device is {spec!r}, but {world_size} processes train together and "
                "each would use that one GPU; use 'cuda' or 'auto' (each process takes the "
                "GPU of its LOCAL_RANK) and choose GPUs with CUDA_VISIBLE_DEVICES"
            )
        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.device is {spec!r} but CUDA is not available")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


DEFAULT_TIMEOUT_MINUTES = 60.0
"""How long a collective waits for every process (``trainer.timeout_minutes``)."""


def init_distributed(
    device_spec: str = "auto", timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES
) -> DistContext:
    """Join the process group that ``torchrun`` describes, or run alone.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; uses NCCL on CUDA and gloo on CPU.

    Args:
        device_spec: ``auto``, ``cpu``, ``cuda`` (or ``cuda:N`` in a single process).
        timeout_minutes: How long a collective waits for the slowest process before the run
            fails. Rank 0 alone runs the kNN/CCA monitor and writes (and hashes)
            checkpoints while the others wait at a barrier, so this must cover that work;
            torch's default for NCCL is 10 minutes.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_spec, local_rank, world_size)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://",
                                timeout=timedelta(minutes=timeout_minutes))
    return DistContext(rank, world_size, local_rank, device)


def current_context(device: str | torch.device = "cpu") -> DistContext:
    """This process's place in the process group already joined (alone when there is
    none), computing on ``device``."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext(device=torch.device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, torch.device(device))


def shutdown_distributed() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
