"""Training checkpoints in a run directory: atomic save, verification and resume.

A checkpoint at step ``S`` lives in ``<run_dir>/checkpoints/`` as three files:

- ``step-<S>.model.<h>.safetensors``: the model's state dict (weights and buffers);
- ``step-<S>.state.<h>.pt``: optimiser, scheduler, grad-scaler and RNG state plus
  caller extras, plain data that loads with ``torch.load(weights_only=True)``;
- ``step-<S>.json``: the sidecar (recipe hash, epoch, step, moeheads version,
  creation time, size and SHA-256 of both files), written last.

``<S>`` is the step zero-padded to nine digits and ``<h>`` the first eight hex
digits of the file's SHA-256, so a file never replaces different content. Every file
is written to a temporary name, fsync'ed and renamed; a checkpoint is valid only
when its sidecar exists and every size and checksum matches.
:func:`moeheads.train.export.export_backbone` writes the backbone alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn

from moeheads.errors import CheckpointError, ConfigError
from moeheads.train._io import (
    check_plain,
    load_safetensors,
    moeheads_version,
    save_safetensors,
    sha256,
    utc_now,
    write_atomic,
    write_json,
)
from moeheads.train.rng import capture_rng_state, restore_rng_state

CHECKPOINTS_DIR = "checkpoints"
FORMAT = "moeheads-checkpoint"
FORMAT_VERSION = 1
_SIDECAR_RE = re.compile(r"^step-(\d+)\.json$")
_DATA_RE = re.compile(r"^(step-\d+)\.(?:model|state)\.[0-9a-f]{8}\.(?:safetensors|pt)$")
_ALIASES_KEY = "moeheads.aliases"
_PLAIN_TYPES = (str, int, float, bool, type(None), torch.dtype, torch.device, torch.Size)


class Stateful(Protocol):
    """Anything with ``state_dict`` / ``load_state_dict`` (optimiser, scheduler, scaler)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any], /) -> Any: ...


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped because it is damaged or belongs to another recipe."""


@dataclass(frozen=True)
class FileRecord:
    """One file of a checkpoint as recorded in its sidecar.

    Attributes:
        name: File name, relative to the sidecar's directory.
        size: Size in bytes.
        sha256: Hex SHA-256 of the contents.
    """

    name: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        """The sidecar entry: ``name``, ``bytes`` and ``sha256``."""
        return {"name": self.name, "bytes": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint's sidecar, read back.

    Attributes:
        path: The sidecar ``step-<S>.json``.
        step: Optimiser steps taken when it was saved.
        epoch: Epoch recorded by the caller.
        recipe_hash: Hash of the recipe that produced it (see :func:`recipe_hash`).
        moeheads_version: moeheads version that wrote it.
        created: Creation time, ISO 8601 in UTC.
        model: The safetensors weights file.
        state: The weights-only torch file with the training state.
        metadata: Caller strings (``architecture`` and ``feature_dim`` are used by
            :func:`export_backbone`).
    """

    path: Path
    step: int
    epoch: int
    recipe_hash: str | None
    moeheads_version: str
    created: str
    model: FileRecord
    state: FileRecord
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def model_path(self) -> Path:
        """Path of the weights file."""
        return self.path.parent / self.model.name

    @property
    def state_path(self) -> Path:
        """Path of the training-state file."""
        return self.path.parent / self.state.name


@dataclass(frozen=True)
class CheckpointProblem:
    """Why a checkpoint was not used.

    Attributes:
        path: The sidecar.
        reason: What is wrong (damage, or a recipe-hash mismatch).
    """

    path: Path
    reason: str


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What :func:`load_checkpoint` restored.

    Attributes:
        info: The checkpoint's sidecar.
        extra: The ``extra`` mapping given to :func:`save_checkpoint`.
        missing_keys: Model keys absent from the checkpoint (only with ``strict=False``).
        unexpected_keys: Checkpoint keys the model lacks (only with ``strict=False``).
    """

    info: CheckpointInfo
    extra: dict[str, Any]
    missing_keys: list[str]
    unexpected_keys: list[str]


def recipe_hash(recipe: Mapping[str, Any], ignore: Iterable[str] = ()) -> str:
    """Stable SHA-256 of a JSON-serialisable recipe, independent of key order.

    Args:
        recipe: The resolved recipe as plain data.
        ignore: Fields that do not change training (e.g. ``"trainer.num_workers"``);
            dotted paths reach into nested mappings.

    Returns:
        64 hex digits.

    Raises:
        ConfigError: A value is not JSON-serialisable.
    """
    pruned = _without(recipe, {tuple(key.split(".")) for key in ignore}, ())
    try:
        text = json.dumps(pruned, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"recipe is not JSON-serialisable: {err}") from err
    return hashlib.sha256(text.encode()).hexdigest()


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    model: nn.Module,
    *,
    step: int,
    epoch: int,
    optimizer: Stateful | None = None,
    scheduler: Stateful | None = None,
    scaler: Stateful | None = None,
    recipe_hash: str | None = None,
    generators: Mapping[str, torch.Generator] | None = None,
    extra: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
    keep_last: int | None = 3,
    overwrite: bool = False,
) -> CheckpointInfo:
    """Write a checkpoint atomically, then keep only the newest valid ones.

    Args:
        run_dir: The run directory; files go to ``run_dir/checkpoints/``.
        model: The model (a DDP or ``torch.compile`` wrapper is unwrapped).
        step: Optimiser steps taken; names the checkpoint.
        epoch: Epoch to record.
        optimizer: Optimiser to save.
        scheduler: Learning-rate scheduler to save.
        scaler: Gradient scaler to save.
        recipe_hash: Hash of the recipe, checked on resume.
        generators: Named generators whose state to save with the global RNG state.
        extra: Further plain data (tensors, numbers, strings, lists, dicts) to save.
        metadata: Strings stored in the sidecar and the safetensors header.
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
    if step < 0:
        raise CheckpointError(f"step must not be negative, got {step}")
    directory = Path(run_dir) / CHECKPOINTS_DIR
    name = f"step-{step:09d}"
    sidecar = directory / f"{name}.json"
    if sidecar.exists() and not overwrite:
        raise CheckpointError(f"{sidecar} exists; pass overwrite=True to replace it")
    state_dict = _unwrap(model).state_dict()
    state = {
        "format_version": FORMAT_VERSION,
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
        "rng": capture_rng_state(generators),
        "extra": dict(extra or {}),
    }
    check_plain(state, "training state")
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    header = {**meta, "format": "pt", "step": str(step), "epoch": str(epoch)}
    header |= {"recipe_hash": recipe_hash or "", "moeheads_version": moeheads_version()}
    created: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        model_rec = FileRecord(
            *write_atomic(
                directory,
                lambda p: save_safetensors(p, state_dict, header, dedupe=True),
                lambda h: f"{name}.model.{h[:8]}.safetensors",
                created,
            )
        )
        state_rec = FileRecord(
            *write_atomic(
                directory,
                lambda p: torch.save(state, p),
                lambda h: f"{name}.state.{h[:8]}.pt",
                created,
            )
        )
        info = CheckpointInfo(
            path=sidecar,
            step=step,
            epoch=epoch,
            recipe_hash=recipe_hash,
            moeheads_version=moeheads_version(),
            created=utc_now(),
            model=model_rec,
            state=state_rec,
            metadata=meta,
        )
        write_atomic(
            directory, lambda p: write_json(p, _sidecar_json(info)), lambda _: sidecar.name
        )
    except BaseException as err:
        for path in created:
            path.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise CheckpointError(f"could not write checkpoint {sidecar}: {err}") from err
        raise
    keep = {model_rec.name, state_rec.name}
    for path in _data_files(directory):
        if path.name.startswith(f"{name}.") and path.name not in keep:
            path.unlink(missing_ok=True)
    if keep_last is not None:
        _prune(directory, keep_last, recipe_hash)
    _remove_leftovers(directory)
    return info


def verify_checkpoint(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Read a sidecar and check that every file it lists has its size and SHA-256.

    Args:
        path: The sidecar ``step-<S>.json``.

    Returns:
        The checkpoint.

    Raises:
        CheckpointError: The sidecar is unreadable or a file is missing or damaged.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"cannot read checkpoint sidecar {path}: {err}") from err
    info = _parse_sidecar(data, path)
    for record in (info.model, info.state):
        file = path.parent / record.name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {path}: file {file} is missing")
        size = file.stat().st_size
        if size != record.size:
            raise CheckpointError(
                f"checkpoint {path}: {file} has {size} bytes, expected {record.size} (truncated?)"
            )
        if sha256(file) != record.sha256:
            raise CheckpointError(f"checkpoint {path}: {file} fails its SHA-256 check")
    return info


def scan_checkpoints(
    run_dir: str | os.PathLike[str], recipe_hash: str | None = None
) -> tuple[list[CheckpointInfo], list[CheckpointProblem]]:
    """Verify every checkpoint of a run.

    Args:
        run_dir: The run directory (or its ``checkpoints/`` directory).
        recipe_hash: When given, checkpoints of other recipes count as problems.

    Returns:
        The valid checkpoints, newest first, and the problems found, newest first.
    """
    valid: list[CheckpointInfo] = []
    problems: list[CheckpointProblem] = []
    for info_or_problem in _candidates(_checkpoints_dir(run_dir), recipe_hash):
        target = valid if isinstance(info_or_problem, CheckpointInfo) else problems
        target.append(info_or_problem)  # type: ignore[arg-type]
    return valid, problems


def latest_valid_checkpoint(
    run_dir: str | os.PathLike[str],
    recipe_hash: str | None = None,
    *,
    on_mismatch: Literal["warn", "error"] = "warn",
) -> CheckpointInfo | None:
    """Newest checkpoint that verifies and matches the recipe.

    Damaged checkpoints are skipped with a :class:`CheckpointWarning` naming them;
    so are checkpoints of another recipe unless ``on_mismatch="error"``.

    Args:
        run_dir: The run directory (or its ``checkpoints/`` directory).
        recipe_hash: Required recipe hash (``None``: any).
        on_mismatch: ``"error"`` raises on the newest checkpoint of another recipe.

    Returns:
        The checkpoint to resume from, or ``None`` when there is none.

    Raises:
        CheckpointError: A recipe-hash mismatch with ``on_mismatch="error"``.
    """
    for item in _candidates(_checkpoints_dir(run_dir), recipe_hash):
        if isinstance(item, CheckpointInfo):
            return item
        if on_mismatch == "error" and item.reason.startswith("recipe hash"):
            raise CheckpointError(f"checkpoint {item.path}: {item.reason}")
        warnings.warn(f"skipping checkpoint {item.path}: {item.reason}", CheckpointWarning, 2)
    return None


def resolve_checkpoint(
    path: str | os.PathLike[str], recipe_hash: str | None = None
) -> CheckpointInfo:
    """Verified checkpoint for a sidecar path, or the newest valid one of a run directory.

    Args:
        path: A sidecar ``step-<S>.json``, a run directory or its ``checkpoints/``.
        recipe_hash: Required recipe hash (``None``: any). In a directory, other
            recipes' checkpoints are skipped with a warning; for a sidecar path a
            mismatch is an error.

    Returns:
        The checkpoint.

    Raises:
        CheckpointError: Nothing valid found, or the named checkpoint is damaged or
            of another recipe.
    """
    path = Path(path)
    if path.is_dir():
        info = latest_valid_checkpoint(path, recipe_hash)
        if info is None:
            raise CheckpointError(f"no valid checkpoint in {_checkpoints_dir(path)}")
        return info
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    info = verify_checkpoint(path)
    if recipe_hash is not None and info.recipe_hash != recipe_hash:
        raise CheckpointError(f"checkpoint {path}: {_mismatch(info, recipe_hash)}")
    return info


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
    target = _unwrap(model)
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


# --- reading and checking ---------------------------------------------------


def _candidates(
    directory: Path, recipe_hash: str | None
) -> Iterator[CheckpointInfo | CheckpointProblem]:
    """Verify sidecars newest first, yielding valid checkpoints and problems lazily."""
    for sidecar in _sidecars(directory):
        try:
            info = verify_checkpoint(sidecar)
        except CheckpointError as err:
            yield CheckpointProblem(sidecar, str(err).removeprefix(f"checkpoint {sidecar}: "))
            continue
        if recipe_hash is not None and info.recipe_hash != recipe_hash:
            yield CheckpointProblem(sidecar, _mismatch(info, recipe_hash))
        else:
            yield info


def _mismatch(info: CheckpointInfo, expected: str) -> str:
    return f"recipe hash {info.recipe_hash} does not match {expected}"


def _sidecars(directory: Path) -> list[Path]:
    """Sidecar paths, highest step first."""
    if not directory.is_dir():
        return []
    found = [(int(m[1]), p) for p in directory.iterdir() if (m := _SIDECAR_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def _data_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if _DATA_RE.match(p.name)]


def _checkpoints_dir(run_dir: str | os.PathLike[str]) -> Path:
    run_dir = Path(run_dir)
    return run_dir / CHECKPOINTS_DIR if (run_dir / CHECKPOINTS_DIR).is_dir() else run_dir


def _parse_sidecar(data: Any, path: Path) -> CheckpointInfo:
    try:
        if data["format"] != FORMAT or data["format_version"] != FORMAT_VERSION:
            raise ValueError(f"format {data['format']!r} v{data['format_version']!r}")
        files = {
            key: FileRecord(rec["name"], int(rec["bytes"]), str(rec["sha256"]))
            for key, rec in data["files"].items()
        }
        if any(Path(rec.name).name != rec.name for rec in files.values()):
            raise ValueError("file names must not contain directories")
        return CheckpointInfo(
            path=path,
            step=int(data["step"]),
            epoch=int(data["epoch"]),
            recipe_hash=None if data["recipe_hash"] is None else str(data["recipe_hash"]),
            moeheads_version=str(data["moeheads_version"]),
            created=str(data["created"]),
            model=files["model"],
            state=files["state"],
            metadata={str(k): str(v) for k, v in data.get("metadata", {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"checkpoint {path}: malformed sidecar ({err!r})") from err


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


# --- writing ----------------------------------------------------------------


def _sidecar_json(info: CheckpointInfo) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": info.step,
        "epoch": info.epoch,
        "recipe_hash": info.recipe_hash,
        "moeheads_version": info.moeheads_version,
        "torch_version": torch.__version__,
        "created": info.created,
        "files": {"model": info.model.to_json(), "state": info.state.to_json()},
        "metadata": info.metadata,
    }


def _prune(directory: Path, keep_last: int, recipe_hash: str | None) -> None:
    """Delete valid checkpoints of this recipe beyond the newest ``keep_last``.

    Damaged checkpoints and other recipes' are kept for inspection.
    """
    valid = [
        info
        for info in _candidates(directory, None)
        if isinstance(info, CheckpointInfo) and info.recipe_hash == recipe_hash
    ]
    valid.sort(key=lambda info: (info.step, info.created), reverse=True)
    for info in valid[keep_last:]:
        info.path.unlink(missing_ok=True)  # sidecar first: the rest is then an orphan
        info.model_path.unlink(missing_ok=True)
        info.state_path.unlink(missing_ok=True)


def _remove_leftovers(directory: Path) -> None:
    """Delete data files without a sidecar (an interrupted save) and temporary files."""
    names = {p.stem for p in _sidecars(directory)}
    for path in _data_files(directory):
        match = _DATA_RE.match(path.name)
        if match and match[1] not in names:
            path.unlink(missing_ok=True)
    for path in directory.glob(".*.tmp"):
        path.unlink(missing_ok=True)


# --- small helpers ----------------------------------------------------------


def _unwrap(model: nn.Module) -> nn.Module:
    """The module under DDP / DataParallel / ``torch.compile`` wrappers."""
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, wrappers):
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def _without(value: Any, ignore: set[tuple[str, ...]], path: tuple[str, ...]) -> Any:
    if isinstance(value, Mapping):
        return {
            k: _without(v, ignore, (*path, str(k)))
            for k, v in value.items()
            if (*path, str(k)) not in ignore
        }
    if isinstance(value, list | tuple):
        return [_without(v, ignore, path) for v in value]
    return value
