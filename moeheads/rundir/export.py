"""Export a checkpoint's backbone weights alone, for use outside moeheads."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

from moeheads.errors import CheckpointError, CheckpointWriteError, writing
from moeheads.rundir.checkpoint import (
    FORMAT_VERSION,
    CheckpointInfo,
    FileRecord,
    resolve_checkpoint,
)
from moeheads.rundir.files import (
    load_safetensors,
    moeheads_version,
    save_safetensors,
    utc_now,
    write_atomic,
    write_json,
)


def export_backbone(
    checkpoint_or_run_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    prefix: str = "backbone.",
    *,
    architecture: str | None = None,
    feature_dim: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the backbone's weights alone (keys without ``prefix``) as safetensors.

    A JSON sidecar next to it (same name, ``.json``) records the architecture,
    feature dimension, source checkpoint and the file's size and SHA-256.

    Args:
        checkpoint_or_run_dir: A checkpoint sidecar, or a run directory (or its
            ``checkpoints/``) whose newest valid checkpoint is used.
        out_path: Output ``.safetensors`` file.
        prefix: Key prefix of the backbone in the model's state dict.
        architecture: Architecture name (default: the checkpoint's ``architecture``
            metadata, if any).
        feature_dim: Feature dimension (default: the checkpoint's ``feature_dim``
            metadata, else the length of the last floating-point tensor).
        overwrite: Replace existing output files.

    Returns:
        The safetensors path.

    Raises:
        CheckpointError: No valid checkpoint, no keys under ``prefix``, or an output
            file exists and ``overwrite`` is false.
    """
    info = resolve_checkpoint(checkpoint_or_run_dir)
    tensors, _ = load_safetensors(info.model_path)
    backbone = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not backbone:
        roots = ", ".join(sorted({k.split(".")[0] for k in tensors}))
        raise CheckpointError(f"{info.model_path} has no keys under {prefix!r} (found: {roots})")
    out = Path(out_path)
    sidecar = out.with_suffix(".json")
    for path in (out, sidecar):
        if path.exists() and not overwrite:
            raise CheckpointError(
                f"{path} exists; replace it with --overwrite (overwrite=True in Python)"
            )
    arch = architecture or info.metadata.get("architecture") or None
    dim = feature_dim or int(info.metadata.get("feature_dim") or 0) or _last_dim(backbone)
    _write_export(out, backbone, info, prefix, arch, dim)
    return out


def _write_export(
    out: Path, backbone: Mapping[str, Tensor], info: CheckpointInfo, prefix: str,
    arch: str | None, dim: int | None,
) -> None:
    """The safetensors file, then its JSON sidecar, each written atomically."""
    sidecar = out.with_suffix(".json")
    header = {"format": "pt", "architecture": arch or "", "feature_dim": str(dim or "")}
    header["source_checkpoint"] = str(info.path)
    with writing(out, "backbone export", CheckpointWriteError):
        out.parent.mkdir(parents=True, exist_ok=True)
        record = FileRecord(
            *write_atomic(
                out.parent,
                lambda p: save_safetensors(p, backbone, header, dedupe=False),
                lambda _: out.name,
            )
        )
        data = {
            "format": "moeheads-backbone",
            "format_version": FORMAT_VERSION,
            "architecture": arch,
            "feature_dim": dim,
            "prefix": prefix,
            "source_checkpoint": str(info.path),
            "source_step": info.step,
            "source_epoch": info.epoch,
            "recipe_hash": info.recipe_hash,
            "moeheads_version": moeheads_version(),
            "created": utc_now(),
            "file": record.to_json(),
        }
        write_atomic(out.parent, lambda p: write_json(p, data), lambda _: sidecar.name)


def _last_dim(tensors: Mapping[str, Tensor]) -> int | None:
    floats = [t for t in tensors.values() if t.is_floating_point() and t.ndim > 0]
    return int(floats[-1].shape[0]) if floats else None
