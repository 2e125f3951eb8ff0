"""Writing a checkpoint atomically, then pruning old ones.

Every file is written to a temporary name, fsync'ed and renamed; the sidecar comes
last, so a checkpoint is valid only when its sidecar exists and every size and
checksum matches. Older checkpoints are deleted only after the new one is complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from moeheads.errors import CheckpointError, CheckpointWriteError, writing
from moeheads.rundir.checkpoint.format import (
    CHECKPOINTS_DIR,
    DATA_RE,
    FORMAT_VERSION,
    CheckpointInfo,
    FileRecord,
    Stateful,
    TrainingState,
    sidecar_json,
    unwrap,
)
from moeheads.rundir.checkpoint.scan import candidates, data_files, sidecars
from moeheads.rundir.files import (
    check_plain,
    moeheads_version,
    save_safetensors,
    utc_now,
    write_atomic,
    write_json,
)
from moeheads.rundir.rng import capture_rng_state


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    state: TrainingState,
    *,
    keep_last: int | None = 3,
    overwrite: bool = False,
) -> CheckpointInfo:
    """Write a checkpoint atomically, then keep only the newest valid ones.

    Args:
        run_dir: The run directory; files go to ``run_dir/checkpoints/``.
        state: The model, step, epoch and training state to save.
        keep_last: How many valid checkpoints of this recipe to keep (``None``: all).
            Older ones are deleted only after the new one is complete.
        overwrite: Replace an existing checkpoint of the same step; the old one
            stays intact until the new one is complete.

    Returns:
        The new checkpoint.

    Raises:
        CheckpointError: The step exists and ``overwrite`` is false, the state is not
            plain data, or a file could not be written.
    """
    if keep_last is not None and keep_last < 1:
        raise CheckpointError(f"keep_last must be at least 1, got {keep_last}")
    if state.step < 0:
        raise CheckpointError(f"step must not be negative, got {state.step}")
    directory = Path(run_dir) / CHECKPOINTS_DIR
    name = f"step-{state.step:09d}"
    sidecar = directory / f"{name}.json"
    if sidecar.exists() and not overwrite:
        raise CheckpointError(f"{sidecar} exists; pass overwrite=True to replace it")
    info = _write_files(directory, name, state)
    keep = {info.model.name, info.state.name}
    for path in data_files(directory):
        if path.name.startswith(f"{name}.") and path.name not in keep:
            path.unlink(missing_ok=True)
    if keep_last is not None:
        _prune(directory, keep_last, state.recipe_hash)
    _remove_leftovers(directory)
    return info


def _training_state(state: TrainingState) -> dict[str, Any]:
    """The plain data of the ``.state.pt`` file."""
    def saved(obj: Stateful | None) -> dict[str, Any] | None:
        return None if obj is None else obj.state_dict()

    data = {
        "format_version": FORMAT_VERSION,
        "optimizer": saved(state.optimizer),
        "scheduler": saved(state.scheduler),
        "scaler": saved(state.scaler),
        "rng": capture_rng_state(state.generators),
        "extra": dict(state.extra or {}),
    }
    check_plain(data, "training state")
    return data


def _write_files(directory: Path, name: str, state: TrainingState) -> CheckpointInfo:
    """Weights, training state and (last) the sidecar; nothing is left behind on failure."""
    state_dict = unwrap(state.model).state_dict()
    training = _training_state(state)
    meta = {str(k): str(v) for k, v in (state.metadata or {}).items()}
    header = {**meta, "format": "pt", "step": str(state.step), "epoch": str(state.epoch)}
    header |= {"recipe_hash": state.recipe_hash or "", "moeheads_version": moeheads_version()}
    sidecar = directory / f"{name}.json"
    created: list[Path] = []
    with writing(sidecar, "checkpoint", CheckpointWriteError):
        return _write_all(directory, name, state, state_dict, training, header, meta, sidecar,
                          created)


def _write_all(directory: Path, name: str, state: TrainingState, state_dict: dict[str, Any],
               training: dict[str, Any], header: dict[str, str], meta: dict[str, str],
               sidecar: Path, created: list[Path]) -> CheckpointInfo:
    """The three files in order; the new ones are removed again if any write fails."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        model_rec = FileRecord(*write_atomic(
            directory, lambda p: save_safetensors(p, state_dict, header, dedupe=True),
            lambda h: f"{name}.model.{h[:8]}.safetensors", created,
        ))
        state_rec = FileRecord(*write_atomic(
            directory, lambda p: torch.save(training, p),
            lambda h: f"{name}.state.{h[:8]}.pt", created,
        ))
        info = CheckpointInfo(
            path=sidecar, step=state.step, epoch=state.epoch, recipe_hash=state.recipe_hash,
            moeheads_version=moeheads_version(), created=utc_now(), model=model_rec,
            state=state_rec, metadata=meta,
        )
        write_atomic(
            directory, lambda p: write_json(p, sidecar_json(info)), lambda _: sidecar.name
        )
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return info


def _prune(directory: Path, keep_last: int, recipe_hash: str | None) -> None:
    """Delete valid checkpoints of this recipe beyond the newest ``keep_last``.

    Damaged checkpoints and other recipes' are kept for inspection.
    """
    valid = [
        info
        for info in candidates(directory, None)
        if isinstance(info, CheckpointInfo) and info.recipe_hash == recipe_hash
    ]
    valid.sort(key=lambda info: (info.step, info.created), reverse=True)
    for info in valid[keep_last:]:
        info.path.unlink(missing_ok=True)  # sidecar first: the rest is then an orphan
        info.model_path.unlink(missing_ok=True)
        info.state_path.unlink(missing_ok=True)


def _remove_leftovers(directory: Path) -> None:
    """Delete data files without a sidecar (an interrupted save) and temporary files."""
    names = {p.stem for p in sidecars(directory)}
    for path in data_files(directory):
        match = DATA_RE.match(path.name)
        if match and match[1] not in names:
            path.unlink(missing_ok=True)
    for path in directory.glob(".*.tmp"):
        path.unlink(missing_ok=True)

