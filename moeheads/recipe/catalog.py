"""The recipes shipped inside the package, found by name (``moeheads run quickstart``).

An installed moeheads carries its recipes in ``moeheads/recipes/`` and its sweeps in
``moeheads/recipes/sweeps/`` (in a clone that folder is the top-level ``recipes/``). A
recipe argument that is an existing file is used as it is; otherwise a bare name
(``quickstart``, ``star_stl10.yaml``) is looked up there, and so is a ``recipes/...`` or
``recipes/sweeps/...`` path that does not exist here (the paths the documentation
shows, from a clone), with a one-line note saying which shipped file is used.

This module reads no YAML schema and imports no PyTorch, so a name that matches nothing
fails at once.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from moeheads.errors import ConfigError

RECIPES_DIR = Path(__file__).parents[1] / "recipes"
SWEEPS_DIR = RECIPES_DIR / "sweeps"
_SUFFIXES = ("", ".yaml", ".yml")


def _yaml_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def shipped_recipes() -> dict[str, Path]:
    """Name -> file of every shipped recipe, sorted by name."""
    return _yaml_files(RECIPES_DIR)


def shipped_sweeps() -> dict[str, Path]:
    """Name -> file of every shipped sweep recipe (``recipes/sweeps/``), sorted by name."""
    return _yaml_files(SWEEPS_DIR)


def describe_recipe(path: Path, width: int = 100) -> str:
    """A recipe's one-line description: the first sentence of its leading comment (cut at
    its first colon when longer than ``width``)."""
    lines = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text.startswith("#") or not text.lstrip("#").strip():
            break
        lines.append(text.lstrip("#").strip())
    sentence = re.split(r"(?<!\bal)\. ", " ".join(lines))[0].rstrip(".")  # not at "et al."
    head, colon, _ = sentence.partition(": ")
    return head if len(sentence) > width and colon else sentence


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _lookup(path: Path, sweep: bool) -> Path | None:
    """The shipped file ``path`` names, or ``None``: a bare name, or a ``recipes/NAME`` or
    ``recipes/sweeps/NAME`` path (relative) that does not exist here."""
    if path.suffix not in _SUFFIXES or path.is_absolute():
        return None
    folder = Path(*path.parts[:-1]).as_posix() if len(path.parts) > 1 else ""
    if folder not in ("", "recipes", "recipes/sweeps"):
        return None
    recipes, sweeps = shipped_recipes(), shipped_sweeps()
    if not sweep and path.stem in sweeps and path.stem not in recipes:
        raise ConfigError(f"{path} is a shipped sweep, not one run's recipe: "
                          f"moeheads sweep {path.stem}")
    order = {"": [sweeps, recipes], "recipes": [recipes, sweeps],
             "recipes/sweeps": [sweeps]}[folder] if sweep else [recipes]
    return next((found[path.stem] for found in order if path.stem in found), None)


def resolve_recipe_path(
    recipe: str | os.PathLike[str],
    *,
    sweep: bool = False,
    note: Callable[[str], None] | None = _note,
) -> Path:
    """The recipe file a command-line argument names: a path, or a shipped recipe's name.

    Args:
        recipe: A file, a shipped name (``quickstart``), or a ``recipes/...`` path.
        sweep: Resolve for ``moeheads sweep``: a bare name is looked up among the shipped
            sweeps, then the recipes (a plain recipe sweeps with ``--grid``/``--seeds``).
        note: Told (one line) when a ``recipes/...`` path that does not exist here is
            taken from the shipped recipes instead; ``None`` says nothing.

    Raises:
        ConfigError: Neither a file nor a shipped recipe (listing the shipped ones), or
            (without ``sweep``) the name of a shipped sweep.
    """
    path = Path(recipe)
    if path.exists():
        return path
    found = _lookup(path, sweep)
    if found is not None:
        if len(path.parts) > 1 and note is not None:
            kind = "sweep" if found.parent == SWEEPS_DIR else "recipe"
            note(f"note: {path} is not here; using the shipped {kind} {found.stem} ({found})")
        return found
    raise ConfigError(f"recipe file not found: {path} (and no shipped recipe of that name; "
                      f"{shipped_names()})")


def shipped_names() -> str:
    """``shipped: a, b, ...; sweeps: c, d`` (the hint of a name that matches nothing)."""
    recipes, sweeps = ", ".join(shipped_recipes()) or "none", ", ".join(shipped_sweeps())
    return f"shipped: {recipes}" + (f"; sweeps: {sweeps}" if sweeps else "")


def count_sweep_runs(path: Path) -> int:
    """How many runs a sweep recipe's ``sweep:`` block makes (settings x grid x seeds),
    read without validating anything (for listings)."""
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    block = data.get("sweep") or {} if isinstance(data, dict) else {}
    count = max(len(block.get("settings") or {}), 1) * max(len(block.get("seeds") or []), 1)
    for values in (block.get("grid") or {}).values():
        count *= max(len(values or []), 1)
    return count
