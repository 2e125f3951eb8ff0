"""The recipes shipped inside the package, found by name (``moeheads run quickstart``).

An installed moeheads carries its recipes in ``moeheads/recipes/`` (in a clone that folder
is the top-level ``recipes/``). A recipe argument that is an existing file is used as it
is; otherwise a bare name (``quickstart``, ``star_stl10.yaml``) is looked up there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from moeheads.errors import ConfigError

RECIPES_DIR = Path(__file__).parents[1] / "recipes"


def shipped_recipes() -> dict[str, Path]:
    """Name -> file of every shipped recipe, sorted by name."""
    if not RECIPES_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml"))}


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


def resolve_recipe_path(recipe: str | os.PathLike[str]) -> Path:
    """The recipe file a command-line argument names: a path, or a shipped recipe's name.

    Raises:
        ConfigError: Neither a file nor a shipped recipe (listing the shipped ones).
    """
    path = Path(recipe)
    if path.exists() or path.parent != Path(".") or path.suffix not in ("", ".yaml", ".yml"):
        return path
    shipped = shipped_recipes()
    if path.stem in shipped:
        return shipped[path.stem]
    names = ", ".join(shipped) or "none"
    raise ConfigError(
        f"recipe file not found: {path} (and no shipped recipe of that name; shipped: {names})"
    )
