"""Fine-tune a detector: SGD with warm-up and steps, progress lines and resumable checkpoints.

With several processes (torchrun), each trains on its equal share of every global batch
of ``images_per_batch`` images, DDP averages the gradients, and rank 0 writes the
checkpoint and the progress lines (whose losses are the mean over processes). Every
image keeps its data order, flip, size and sampling draws whatever the split
(:mod:`~moeheads.eval.detection.sampling`), so N processes train as one process with the
whole batch. Exactly so when every image samples as many anchors and RoIs as the
detector asks (256 anchors, ``rois_per_image`` RoIs: the normal case); an image too
small to hold that many anchors samples fewer, and torchvision's losses, means over a
process's samples, then weigh the images of a smaller share a little differently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler

from moeheads.errors import CheckpointError
from moeheads.eval.detection.detector import set_image_sizes
from moeheads.eval.detection.sampling import ImageDraws, draw_images, seed_images
from moeheads.eval.detection.schedule import learning_rate
from moeheads.eval.detection.transforms import collate, move, training_batch
from moeheads.runtime.distributed import DistContext


@dataclass(frozen=True)
class Schedule:
    """The fine-tuning schedule (MoCo's VOC07+12 protocol by default)."""

    iterations: int = 24000
    images_per_batch: int = 16
    lr: float = 0.02
    warmup_iters: int = 100
    steps: Sequence[int] = (18000, 22000)
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    train_sizes: Sequence[int] = field(default_factory=lambda: tuple(range(480, 801, 32)))
    flip: bool = True
    seed: int = 0


class _Share(Sampler[list[int]]):
    """The ``rank``-th of ``world`` equal consecutive parts of each batch of ``batches``."""

    def __init__(self, batches: BatchSampler, rank: int, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            size = len(batch) // self.world
            yield batch[self.rank * size:(self.rank + 1) * size]

    def __len__(self) -> int:
        return len(self.batches)


def _batches(data: Dataset, schedule: Schedule, start: int, num_workers: int, ctx: DistContext
             ) -> Iterator[Any]:
    """This process's share of shuffled global batches without end; the shuffling is
    seeded by ``seed`` and ``start``."""
    generator = torch.Generator().manual_seed(schedule.seed * 1_000_003 + start)
    size = schedule.images_per_batch
    batches = BatchSampler(RandomSampler(data, generator=generator), size,  # type: ignore[arg-type]
                           drop_last=len(data) >= size)  # type: ignore[arg-type]
    loader = DataLoader(data, batch_sampler=_Share(batches, ctx.rank, ctx.world_size),
                        generator=generator, collate_fn=collate, num_workers=num_workers)
    while True:
        yield from loader


def _format_eta(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _resume(model: Any, optimizer: Any, checkpoint: Path | None, schedule: Schedule,
            log: Callable[[str], None], ctx: DistContext) -> int:
    """The iteration to start from: the checkpoint's when it exists for this schedule
    (every process reads it and must come to the same iteration)."""
    start = _load(model, optimizer, checkpoint, schedule, log)
    if ctx.mean(float(start)) != start:
        raise CheckpointError(
            f"the processes resume {checkpoint} from different iterations; every process "
            "must be able to read the run directory"
        )
    return start


def _load(model: Any, optimizer: Any, checkpoint: Path | None, schedule: Schedule,
          log: Callable[[str], None]) -> int:
    if checkpoint is None or not checkpoint.is_file():
        return 0
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if state.get("schedule") != asdict(schedule):
        log(f"detection: {checkpoint} is of another schedule; starting from iteration 0")
        return 0
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    log(f"detection: resuming from iteration {state['iteration']} ({checkpoint})")
    return int(state["iteration"])


def _save(model: Any, optimizer: Any, checkpoint: Path, iteration: int, schedule: Schedule
          ) -> None:
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    partial = checkpoint.with_suffix(".partial")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "iteration": iteration, "schedule": asdict(schedule)}, partial)
    partial.replace(checkpoint)


def train_step(network: Any, optimizer: Any, items: Sequence[Any], rate: float,
               draws: ImageDraws, device: torch.device) -> tuple[Tensor, dict]:
    """One SGD step on a batch of dataset items at learning rate ``rate``.

    Args:
        network: The detector, or the detector in ``DistributedDataParallel``.
        draws: The flips, sizes and sampling seeds of ``items``.

    Returns:
        The summed loss and its parts (torchvision's loss dict).
    """
    for group in optimizer.param_groups:
        group["lr"] = rate
    seed_images(getattr(network, "module", network), draws)
    images, targets = training_batch(items, draws.flips)
    losses = network([i.to(device) for i in images], move(targets, device))
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, losses


class _Progress:
    """Progress lines and the logged losses (their mean over processes; all call it)."""

    def __init__(self, schedule: Schedule, start: int, log_every: int,
                 log: Callable[[str], None], ctx: DistContext) -> None:
        self.schedule, self.log_every, self.log, self.ctx = schedule, log_every, log, ctx
        self.tick, self.last = time.perf_counter(), start
        self.history: list[dict[str, float]] = []

    def update(self, done: int, rate: float, losses: dict[str, Tensor]) -> None:
        total = self.schedule.iterations
        if done % self.log_every and done != total:
            return
        values = torch.stack([v.detach().float() for v in losses.values()])
        means = (self.ctx.all_reduce_sum(values) / self.ctx.world_size).tolist()
        parts = dict(zip(losses, means, strict=True))
        elapsed, self.tick = time.perf_counter() - self.tick, time.perf_counter()
        speed = (done - self.last) * self.schedule.images_per_batch / max(elapsed, 1e-9)
        self.last = done
        loss = sum(means)
        self.history.append({"iteration": done, "loss": loss, **parts})
        eta = (total - done) * self.schedule.images_per_batch / speed
        self.log(f"detection {done}/{total} loss {loss:.3f} ("
                 + " ".join(f"{k.removeprefix('loss_')} {v:.3f}" for k, v in parts.items())
                 + f") lr {rate:.5f} {speed:.1f} img/s ETA {_format_eta(eta)}")


def _quiet(line: str) -> None:
    """Where the progress lines of ranks other than 0 go: nowhere."""


def _distributed(model: Any, ctx: DistContext) -> Any:
    """``model`` in ``DistributedDataParallel`` when several processes train, else itself."""
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)


def train_detector(
    model: Any, data: Dataset, schedule: Schedule, device: torch.device,
    checkpoint: Path | None = None, checkpoint_every: int = 1000, log_every: int = 20,
    log: Callable[[str], None] = print, num_workers: int = 0, ctx: DistContext | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` (a torchvision detector) for ``schedule.iterations`` steps.

    Args:
        ctx: The processes that train together (one process when ``None``); with several,
            ``model``'s BatchNorm should be synchronised, and only rank 0 writes
            ``checkpoint`` and calls ``log``.

    Returns:
        The logged losses (``iteration``, ``loss`` and each part) every ``log_every``.
    """
    ctx = ctx or DistContext(device=device)
    log = log if ctx.is_main else _quiet
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=schedule.lr, momentum=schedule.momentum,
                                weight_decay=schedule.weight_decay)
    start = _resume(model, optimizer, checkpoint, schedule, log, ctx)
    network = _distributed(model, ctx)
    model.train()
    set_image_sizes(model, True, schedule.train_sizes)
    generator = torch.Generator().manual_seed(schedule.seed + start)
    batches = _batches(data, schedule, start, num_workers, ctx)
    progress = _Progress(schedule, start, log_every, log, ctx)
    for iteration in range(start, schedule.iterations):
        rate = learning_rate(iteration, schedule.lr, schedule.warmup_iters, schedule.steps,
                             schedule.gamma)
        items = next(batches)
        draws = draw_images(generator, len(items) * ctx.world_size, schedule.flip,
                            schedule.train_sizes)
        share = draws.part(ctx.rank * len(items), (ctx.rank + 1) * len(items))
        _, losses = train_step(network, optimizer, items, rate, share, device)
        done = iteration + 1
        progress.update(done, rate, losses)
        if ctx.is_main and checkpoint is not None and (done % checkpoint_every == 0
                                                       or done == schedule.iterations):
            _save(model, optimizer, checkpoint, done, schedule)
    return progress.history
