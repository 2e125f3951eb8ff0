"""Counting the tensor reads that make the host wait for the device (a CPU stand-in for
``torch.cuda.set_sync_debug_mode``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

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
