"""Reading recipes from YAML, with ``--set`` overrides and errors that name the field and line."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from moeheads.config import Recipe
from moeheads.errors import ConfigError


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"trainer.epochs=3"`` -> ``(["trainer", "epochs"], 3)`` (the value is read as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects FIELD.PATH=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML ({error})") from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``data`` with each ``FIELD.PATH=VALUE`` override set (intermediate mappings created).

    A mapping value replaces the whole field (``backbone={name: torchvision:resnet18}``).
    Setting a component's ``name`` to another component starts that component afresh:
    the old component's options are dropped, and later overrides add options to the new one
    (``backbone.name=timm:resnet50 backbone.pretrained=true``).
    """
    for text in overrides:
        path, value = parse_override(text)
        node: Any = data
        for depth, key in enumerate(path[:-1]):
            child = node.get(key) if isinstance(node, dict) else None
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise ConfigError(f"--set {'.'.join(path)}: {where} is not a mapping")
            node = child
        if (len(path) > 1 and path[-1] == "name" and "name" in node
                and node["name"] != value):
            node.clear()  # another component: the old one's options do not apply
        node[path[-1]] = value
    return data


def _line_of(root: yaml.Node | None, path: Sequence[Any]) -> int | None:
    """1-based line of the YAML node at ``path`` (or of its deepest existing parent)."""
    node, line = root, None
    for key in path:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(key)]
            if not match:
                return line
            key_node, node = match[0]
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return line
    return node.start_mark.line + 1 if node is not None else line


def _fields_at(path: Sequence[Any]) -> list[str]:
    """The field names of the recipe model that holds ``path``'s last key (``[]`` if none)."""
    model: Any = Recipe
    for key in path:
        if isinstance(key, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        info = model.model_fields.get(str(key))
        if info is None:
            return []
        annotation = info.annotation
        for arg in typing.get_args(annotation) or (annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                annotation = arg
                break
        model = annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _suggestion(loc: Sequence[Any]) -> str:
    """``" (did you mean 'epochs'?)"`` for an unknown field close to a known one."""
    if not loc:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), _fields_at(loc[:-1]), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def describe_recipe_errors(error: ValidationError, source: str, root: yaml.Node | None) -> str:
    """One line per problem: ``field.path (line N): message``."""
    lines = []
    for item in error.errors():
        loc = [p for p in item["loc"] if p not in ("function-after", "function-wrap")]
        field = ".".join(str(p) for p in loc) or "(recipe)"
        line = _line_of(root, loc) if root is not None else None
        where = f" (line {line})" if line else ""
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field" + _suggestion(loc)
        elif item["type"] == "missing":
            message = "missing field"
        lines.append(f"{field}{where}: {message}")
    count = len(lines)
    header = f"{source}: {count} problem{'s' if count > 1 else ''}"
    return header + "\n  " + "\n  ".join(lines)


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override and validate a recipe file.

    Raises:
        ConfigError: For a missing or unparsable file, or any invalid field; the message
            lists every problem with its field path and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file not found: {path}")
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a YAML mapping, got {type(data).__name__}")
    data = apply_overrides(data, overrides)
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_recipe_errors(error, str(path), root)) from None


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe (every default filled in) as YAML."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
