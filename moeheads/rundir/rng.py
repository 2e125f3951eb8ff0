"""Capture and restore random number generator state as weights-only-loadable data.

The captured state holds only tensors, numbers, strings and plain containers, so a
file containing it loads with ``torch.load(weights_only=True)``. It covers Python's
``random``, NumPy's global generator (when NumPy is installed), torch's CPU
generator, the CUDA generator of the current device (when CUDA is in use) and any
named :class:`torch.Generator` the caller passes.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from moeheads.errors import CheckpointError

RngState = dict[str, Any]


def capture_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> RngState:
    """Return the current generator states as plain data.

    Only the CUDA generator of the current device is captured, and only when CUDA
    has been initialised in this process, so that no context is created on other
    devices.

    Args:
        generators: Extra generators to capture by name (e.g. a data loader's).

    Returns:
        A dict with keys ``python``, ``torch``, ``numpy`` and ``cuda`` (``None`` when
        not available) and ``generators``.
    """
    version, internal, gauss_next = random.getstate()
    state: RngState = {
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "cuda": None,
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        device = torch.cuda.current_device()
        state["cuda"] = {"device": device, "state": torch.cuda.get_rng_state(device)}
    return state


def restore_rng_state(
    state: RngState, generators: Mapping[str, torch.Generator] | None = None
) -> None:
    """Set the generators to a state returned by :func:`capture_rng_state`.

    The CUDA state is restored to the current device when CUDA is available.

    Args:
        state: The captured state (tensors may live on any device).
        generators: Generators to restore by name; each must be in ``state``.

    Raises:
        CheckpointError: A requested generator is missing from ``state``.
    """
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss_next"]))
    torch.set_rng_state(state["torch"].cpu())
    if state.get("numpy") is not None:
        _set_numpy_state(state["numpy"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda["state"].cpu(), torch.cuda.current_device())
    saved = state.get("generators", {})
    for name, generator in (generators or {}).items():
        if name not in saved:
            known = ", ".join(sorted(saved)) or "none"
            raise CheckpointError(f"no state saved for generator {name!r} (saved: {known})")
        generator.set_state(saved[name].cpu())


def _numpy_state() -> dict[str, Any] | None:
    try:
        import numpy as np
    except ImportError:
        return None
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "bit_generator": str(name),
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _set_numpy_state(state: Mapping[str, Any]) -> None:
    try:
        import numpy as np
    except ImportError:
        warnings.warn("NumPy is not installed: its saved RNG state is ignored", stacklevel=3)
        return
    keys = state["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state(
        (state["bit_generator"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"])
    )
