"""What differs between the recipe a run directory was trained with and a new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from moeheads.recipe.schema import Recipe

# Fields that do not change what is trained (Recipe.hash leaves them out too).
_UNTRAINED = ("output_dir", "monitor", "evaluation", "trainer.log_every", "data.num_workers")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): data}


def _trained(field: str) -> bool:
    return not any(field == f or field.startswith(f + ".") for f in _UNTRAINED)


def recipe_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``field -> (old value, new value)`` for each field that changes training.

    Example:
        >>> recipe_changes({"trainer": {"epochs": 2, "log_every": 1}},
        ...                {"trainer": {"epochs": 4, "log_every": 5}})
        {'trainer.epochs': (2, 4)}
    """
    a, b = _flatten(old), _flatten(new)
    return {field: (a.get(field), b.get(field)) for field in sorted(a.keys() | b.keys())
            if _trained(field) and a.get(field) != b.get(field)}


def changes_since(run_dir: Path, recipe: Recipe) -> dict[str, tuple[Any, Any]] | None:
    """:func:`recipe_changes` from the run's ``recipe.yaml`` to ``recipe`` (``None`` when that
    file is missing or unreadable)."""
    try:
        old = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(old, dict):
        return None
    return recipe_changes(old, recipe.model_dump(mode="json"))


def describe_changes(changes: dict[str, tuple[Any, Any]] | None, limit: int = 6) -> str:
    """``trainer.epochs 2 -> 4, optimizer.lr 0.1 -> 0.01`` (at most ``limit`` fields)."""
    if changes is None:
        return "its recipe.yaml is missing, so the differences cannot be listed"
    if not changes:
        return "only fields that are not part of the recipe hash differ"
    shown = [f"{field} {old!r} -> {new!r}" for field, (old, new) in list(changes.items())[:limit]]
    more = len(changes) - limit
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
