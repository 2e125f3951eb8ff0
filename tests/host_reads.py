"""Counting the tensor reads that make the host wait for the device (a CPU stand-in for
``torch.cuda.set_sync_debug_mode``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

#: Tensor methods that copy values to the host (on an accelerator: wait for it).
HOST_READS = ("item", "tolist", "numpy", "cpu", "nonzero", "__bool__", "__float__",
              "__int__", "__index__", "__format__")


@contextmanager
def count_host_reads() -> Iterator[Counter[str]]:
    """Count, by method name, every call of a :data:`HOST_READS` method while inside."""
    calls: Counter[str] = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def counted(name: str, original):
        def method(self, *args, **kwargs):
            calls[name] += 1
            return original(self, *args, **kwargs)
        return method

    for name, original in originals.items():
        setattr(torch.Tensor, name, counted(name, original))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def train_counting_host_reads(recipe: Any, monkeypatch: Any) -> tuple[Counter[str], list[Any],
                                                                    dict[str, Any], Any]:
    """Train one epoch of ``recipe`` (photometric step masked, as on an accelerator) with
    every training step counted: the host reads made inside steps, each step's returned
    values (``None`` between micro-batches), the epoch's metrics and the training parts."""
    from rich.console import Console

    from moeheads.runtime.distributed import DistContext
    from moeheads.train.builder import build_training, wrap_network
    from moeheads.train.loop import TrainLoop

    recipe.run_dir.mkdir(parents=True)
    parts = build_training(recipe, DistContext())
    wrap_network(parts, compile=False)
    loop = TrainLoop(recipe, recipe.run_dir, Console(quiet=True), parts)
    loop.photometric.masked = True  # what an accelerator gets
    reads: Counter[str] = Counter()
    values: list[Any] = []
    step = TrainLoop._train_step

    def counted(self: TrainLoop, batch: object, last: bool) -> object:
        with count_host_reads() as inside:
            out = step(self, batch, last)
        reads.update(inside)
        values.append(out)
        return out

    monkeypatch.setattr(TrainLoop, "_train_step", counted)
    return reads, values, loop.train(0, 0, 0), parts
