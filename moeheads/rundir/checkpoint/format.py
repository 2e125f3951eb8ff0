"""The checkpoint format: file names, the sidecar's fields and the records read back.

A checkpoint at step ``S`` lives in ``<run_dir>/checkpoints/`` as three files:

- ``step-<S>.model.<h>.safetensors``: the model's state dict (weights and buffers);
- ``step-<S>.state.<h>.pt``: optimiser, scheduler, grad-scaler and RNG state plus
  caller extras, plain data that loads with ``torch.load(weights_only=True)``;
- ``step-<S>.json``: the sidecar (recipe hash, epoch, step, moeheads version,
  creation time, size and SHA-256 of both files), written last.

``<S>`` is the step zero-padded to nine digits and ``<h>`` the first eight hex
digits of the file's SHA-256, so a file never replaces different content.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from moeheads.errors import CheckpointError

CHECKPOINTS_DIR = "checkpoints"
FORMAT = "moeheads-checkpoint"
FORMAT_VERSION = 1
SIDECAR_RE = re.compile(r"^step-(\d+)\.json$")
DATA_RE = re.compile(r"^(step-\d+)\.(?:model|state)\.[0-9a-f]{8}\.(?:safetensors|pt)$")


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
        recipe_hash: Hash of the recipe that produced it (see
            :meth:`~moeheads.recipe.schema.Recipe.hash`).
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



@dataclass
class TrainingState:
    """What :func:`~moeheads.rundir.checkpoint.save_checkpoint` writes: the model and the
    state that training resumes from.

    Attributes:
        model: The model (a DDP or ``torch.compile`` wrapper is unwrapped).
        step: Optimiser steps taken; names the checkpoint.
        epoch: Epoch to record.
        optimizer: Optimiser to save.
        scheduler: Learning-rate scheduler to save.
        scaler: Gradient scaler to save.
        recipe_hash: Hash of the recipe (:meth:`~moeheads.recipe.schema.Recipe.hash`), checked
            on resume.
        generators: Named generators whose state to save with the global RNG state.
        extra: Further plain data (tensors, numbers, strings, lists, dicts) to save.
        metadata: Strings stored in the sidecar and the safetensors header.
    """

    model: nn.Module
    step: int
    epoch: int
    optimizer: Stateful | None = None
    scheduler: Stateful | None = None
    scaler: Stateful | None = None
    recipe_hash: str | None = None
    generators: Mapping[str, torch.Generator] | None = None
    extra: Mapping[str, Any] | None = None
    metadata: Mapping[str, str] | None = None


def parse_sidecar(data: Any, path: Path) -> CheckpointInfo:
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


def sidecar_json(info: CheckpointInfo) -> dict[str, Any]:
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


def unwrap(model: nn.Module) -> nn.Module:
    """The module under DDP / DataParallel / ``torch.compile`` wrappers."""
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, wrappers):
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner

