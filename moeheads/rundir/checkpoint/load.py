"""Restoring a model and its training state from a checkpoint."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from moeheads.errors import CheckpointError
from moeheads.rundir.checkpoint.format import (
    FORMAT_VERSION,
    LoadedCheckpoint,
    Stateful,
    unwrap,
)
from moeheads.rundir.checkpoint.scan import resolve_checkpoint
from moeheads.rundir.files import load_safetensors
from moeheads.rundir.rng import restore_rng_state


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: Stateful | None = None,
    scheduler: Stateful | None = None,
    scaler: Stateful | None = None,
    *,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
    generators: Mapping[str, torch.Generator] | None = None,
    restore_rng: bool = True,
    recipe_hash: str | None = None,
) -> LoadedCheckpoint:
    """Restore model, optimiser, scheduler, scaler and RNG state from a checkpoint.

    Both files are read and the model's keys and shapes checked before anything is
    changed. The training state is loaded with ``torch.load(weights_only=True)``.

    Args:
        path: A sidecar, a run directory or its ``checkpoints/`` (newest valid one).
        model: Model to load into (a DDP or ``torch.compile`` wrapper is unwrapped).
        optimizer: Optimiser to restore.
        scheduler: Scheduler to restore.
        scaler: Gradient scaler to restore.
        strict: Require the model's keys and the checkpoint's to be the same.
        map_location: Device for the loaded tensors.
        generators: Named generators to restore (they must have been saved).
        restore_rng: Restore the global and named RNG states.
        recipe_hash: Required recipe hash (``None``: any).

    Returns:
        The checkpoint's sidecar, its extras, and missing/unexpected keys.

    Raises:
        CheckpointError: The checkpoint is damaged, not weights-only loadable, or
            does not match the model or the given optimiser/scheduler/scaler.
    """
    info = resolve_checkpoint(path, recipe_hash)
    tensors, _ = load_safetensors(info.model_path, map_location)
    state = _read_state(info.state_path, map_location)
    target = unwrap(model)
    missing, unexpected = _check_keys(target.state_dict(), tensors, strict, info.model_path)
    target.load_state_dict(tensors, strict=strict)
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is None:
            continue
        if state.get(key) is None:
            raise CheckpointError(f"{info.state_path} holds no {key} state")
        try:
            obj.load_state_dict(state[key])
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"{info.state_path}: {key} state does not match: {err}") from err
    if restore_rng:
        restore_rng_state(state["rng"], generators)
    return LoadedCheckpoint(info, dict(state.get("extra") or {}), missing, unexpected)


def _read_state(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} is not weights-only loadable (it holds arbitrary Python objects, which "
            f"moeheads refuses to unpickle): {str(err).splitlines()[0]}"
        ) from err
    except (OSError, RuntimeError, EOFError) as err:
        raise CheckpointError(f"cannot read training state {path}: {err}") from err
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a moeheads training-state file")
    return state


def _check_keys(
    expected: Mapping[str, Tensor], loaded: Mapping[str, Tensor], strict: bool, file: Path
) -> tuple[list[str], list[str]]:
    """Missing and unexpected keys; raise when they (or any shape) do not fit."""
    missing = [k for k in expected if k not in loaded]
    unexpected = [k for k in loaded if k not in expected]
    shapes = [
        f"{k} {tuple(loaded[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in loaded and loaded[k].shape != v.shape
    ]
    parts = [("wrong shapes (checkpoint vs model)", shapes)]
    if strict:
        parts += [("missing keys", missing), ("unexpected keys", unexpected)]
    found = [f"{label}: {_listing(keys)}" for label, keys in parts if keys]
    if found:
        raise CheckpointError(f"{file} does not match the model: " + "; ".join(found))
    return missing, unexpected


def _listing(keys: list[str], limit: int = 8) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more

