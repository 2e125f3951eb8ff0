"""Fine-tune a detector: SGD with warm-up and steps, progress lines and resumable checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from moeheads.eval.detection.detector import set_image_sizes
from moeheads.eval.detection.schedule import learning_rate
from moeheads.eval.detection.transforms import collate, move, training_batch


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


def _batches(data: Dataset, schedule: Schedule, start: int, num_workers: int) -> Iterator[Any]:
    """Shuffled batches without end; the shuffling is seeded by ``seed`` and ``start``."""
    generator = torch.Generator().manual_seed(schedule.seed * 1_000_003 + start)
    loader = DataLoader(data, batch_size=schedule.images_per_batch, shuffle=True,
                        generator=generator, collate_fn=collate, num_workers=num_workers,
                        drop_last=len(data) >= schedule.images_per_batch)  # type: ignore[arg-type]
    while True:
        yield from loader


def _format_eta(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _resume(model: Any, optimizer: Any, checkpoint: Path | None, schedule: Schedule,
            log: Callable[[str], None]) -> int:
    """The iteration to start from: the checkpoint's when it exists for this schedule."""
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


def train_step(model: Any, optimizer: Any, items: Sequence[Any], rate: float, flip: bool,
               generator: torch.Generator, device: torch.device) -> tuple[Tensor, dict]:
    """One SGD step on a batch of dataset items at learning rate ``rate``.

    Returns:
        The summed loss and its parts (torchvision's loss dict).
    """
    for group in optimizer.param_groups:
        group["lr"] = rate
    images, targets = training_batch(items, flip, generator)
    losses = model([i.to(device) for i in images], move(targets, device))
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, losses


def train_detector(
    model: Any, data: Dataset, schedule: Schedule, device: torch.device,
    checkpoint: Path | None = None, checkpoint_every: int = 1000, log_every: int = 20,
    log: Callable[[str], None] = print, num_workers: int = 0,
) -> list[dict[str, float]]:
    """Train ``model`` (a torchvision detector) for ``schedule.iterations`` steps.

    Returns:
        The logged losses (``iteration``, ``loss`` and each part) every ``log_every``.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=schedule.lr, momentum=schedule.momentum,
                                weight_decay=schedule.weight_decay)
    start = _resume(model, optimizer, checkpoint, schedule, log)
    model.train()
    set_image_sizes(model, True, schedule.train_sizes)
    generator = torch.Generator().manual_seed(schedule.seed + start)
    batches, history = _batches(data, schedule, start, num_workers), []
    tick, last = time.perf_counter(), start
    for iteration in range(start, schedule.iterations):
        rate = learning_rate(iteration, schedule.lr, schedule.warmup_iters, schedule.steps,
                             schedule.gamma)
        loss, losses = train_step(model, optimizer, next(batches), rate, schedule.flip,
                                  generator, device)
        done = iteration + 1
        if done % log_every == 0 or done == schedule.iterations:
            elapsed, tick = time.perf_counter() - tick, time.perf_counter()
            speed = (done - last) * schedule.images_per_batch / max(elapsed, 1e-9)
            last = done
            parts = {k: float(v.detach()) for k, v in losses.items()}
            history.append({"iteration": done, "loss": float(loss.detach()), **parts})
            eta = (schedule.iterations - done) * schedule.images_per_batch / speed
            log(f"detection {done}/{schedule.iterations} loss {float(loss.detach()):.3f} ("
                + " ".join(f"{k.removeprefix('loss_')} {v:.3f}" for k, v in parts.items())
                + f") lr {rate:.5f} {speed:.1f} img/s ETA {_format_eta(eta)}")
        if checkpoint is not None and (done % checkpoint_every == 0
                                       or done == schedule.iterations):
            _save(model, optimizer, checkpoint, done, schedule)
    return history
