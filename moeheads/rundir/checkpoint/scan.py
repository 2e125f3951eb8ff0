"""Finding and verifying a run's checkpoints: sizes and SHA-256 checked, newest first."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from moeheads.errors import CheckpointError
from moeheads.rundir.checkpoint.format import (
    CHECKPOINTS_DIR,
    DATA_RE,
    SIDECAR_RE,
    CheckpointInfo,
    CheckpointProblem,
    CheckpointWarning,
    parse_sidecar,
)
from moeheads.rundir.files import sha256


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
    info = parse_sidecar(data, path)
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
    for info_or_problem in candidates(checkpoints_dir(run_dir), recipe_hash):
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
    for item in candidates(checkpoints_dir(run_dir), recipe_hash):
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
            raise CheckpointError(f"no valid checkpoint in {checkpoints_dir(path)}")
        return info
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    info = verify_checkpoint(path)
    if recipe_hash is not None and info.recipe_hash != recipe_hash:
        raise CheckpointError(f"checkpoint {path}: {mismatch(info, recipe_hash)}")
    return info


def candidates(
    directory: Path, recipe_hash: str | None
) -> Iterator[CheckpointInfo | CheckpointProblem]:
    """Verify sidecars newest first, yielding valid checkpoints and problems lazily."""
    for sidecar in sidecars(directory):
        try:
            info = verify_checkpoint(sidecar)
        except CheckpointError as err:
            yield CheckpointProblem(sidecar, str(err).removeprefix(f"checkpoint {sidecar}: "))
            continue
        if recipe_hash is not None and info.recipe_hash != recipe_hash:
            yield CheckpointProblem(sidecar, mismatch(info, recipe_hash))
        else:
            yield info


def mismatch(info: CheckpointInfo, expected: str) -> str:
    return f"recipe hash {info.recipe_hash} does not match {expected}"


def sidecars(directory: Path) -> list[Path]:
    """Sidecar paths, highest step first."""
    if not directory.is_dir():
        return []
    found = [(int(m[1]), p) for p in directory.iterdir() if (m := SIDECAR_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def data_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if DATA_RE.match(p.name)]


def checkpoints_dir(run_dir: str | os.PathLike[str]) -> Path:
    run_dir = Path(run_dir)
    return run_dir / CHECKPOINTS_DIR if (run_dir / CHECKPOINTS_DIR).is_dir() else run_dir

