"""File primitives for checkpoints: atomic writes, hashing, safetensors and plain-data checks."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from moeheads._version import __version__
from moeheads.errors import CheckpointError

ALIASES_KEY = "moeheads.aliases"
_PLAIN_TYPES = (str, int, float, bool, type(None), torch.dtype, torch.device, torch.Size)


def write_atomic(
    directory: Path,
    write: Callable[[Path], None],
    final_name: Callable[[str], str],
    created: list[Path] | None = None,
) -> tuple[str, int, str]:
    """Write via a temporary file in ``directory``: fsync, hash, rename, fsync the directory.

    Args:
        directory: Where the file goes.
        write: Writes the contents to the path it is given.
        final_name: Maps the contents' SHA-256 to the file name.
        created: A final path that did not exist before is appended here, so that
            the caller can remove it if a later step fails.

    Returns:
        The file's name, size in bytes and SHA-256.
    """
    tmp = directory / f".{secrets.token_hex(6)}.tmp"
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        digest = sha256(tmp)
        final = directory / final_name(digest)
        existed = final.exists()
        size = tmp.stat().st_size
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    if created is not None and not existed:
        created.append(final)
    _fsync_dir(directory)
    return final.name, size, digest


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON."""
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def save_safetensors(
    path: Path, state_dict: Mapping[str, Any], metadata: Mapping[str, str], *, dedupe: bool
) -> None:
    """Save a state dict with ``safetensors``, handling shared and non-contiguous tensors.

    With ``dedupe`` a tensor that aliases another (same memory, shape and strides, e.g.
    tied weights) is stored once and recorded in the metadata, to be restored by
    :func:`load_safetensors`; otherwise, and for partial overlaps, it is copied.
    """
    tensors: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    owners: dict[tuple[Any, ...], int] = defaultdict(int)
    for key, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"state {key!r} is a {type(value).__name__}, not a tensor")
        value = value.detach()
        memory = (value.device, value.untyped_storage().data_ptr())
        view = (*memory, value.storage_offset(), value.shape, value.stride(), value.dtype)
        if dedupe and value.numel() and view in seen:
            aliases[key] = seen[view]
            continue
        seen.setdefault(view, key)
        shared = value.numel() > 0 and owners[memory] > 0
        owners[memory] += value.numel() > 0
        tensors[key] = value.clone() if shared else value.contiguous()
    save_file(tensors, str(path), metadata={**metadata, ALIASES_KEY: json.dumps(aliases)})


def load_safetensors(
    path: Path, device: str | torch.device = "cpu"
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors (aliases restored as the same tensor) and string metadata of a file."""
    try:
        with safe_open(path, framework="pt", device=str(device)) as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
            metadata = dict(f.metadata() or {})
    except (OSError, SafetensorError, ValueError) as err:
        raise CheckpointError(f"cannot read weights {path}: {err}") from err
    for alias, source in json.loads(metadata.pop(ALIASES_KEY, "{}")).items():
        tensors[alias] = tensors[source]
    return tensors, metadata


def check_plain(value: Any, where: str) -> None:
    """Raise unless ``value`` is data that ``torch.load(weights_only=True)`` accepts.

    Raises:
        CheckpointError: Naming the first offending entry.
    """
    if isinstance(value, Tensor) or type(value) in _PLAIN_TYPES:
        return
    if type(value) in (dict, OrderedDict, defaultdict):
        for key, item in value.items():
            check_plain(key, where)
            check_plain(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
    else:
        raise CheckpointError(
            f"cannot save {where}: {type(value).__qualname__} is not plain data "
            "(tensors, numbers, strings, lists, dicts)"
        )


def utc_now() -> str:
    """The current time, ISO 8601 in UTC to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def moeheads_version() -> str:
    """The installed moeheads version."""
    return __version__


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
