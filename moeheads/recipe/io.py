"""Reading recipes from YAML, with ``--set`` overrides and errors that name the field and line."""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from moeheads.errors import ConfigError
from moeheads.recipe.schema import Recipe


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


def _override_of(loc: Sequence[Any], overrides: Sequence[str]) -> str | None:
    """The last ``--set`` override whose path and ``loc`` share their start, if any."""
    fields = [str(p) for p in loc]
    for text in reversed(overrides):
        path = text.partition("=")[0].strip().split(".")
        common = min(len(path), len(fields))
        if common and path[:common] == fields[:common]:
            return text
    return None


def describe_recipe_errors(error: ValidationError, source: str, root: yaml.Node | None,
                           overrides: Sequence[str] = ()) -> str:
    """One line per problem: ``field.path (line N): message`` (or ``(--set ...)`` for a field
    an override set)."""
    lines = []
    for item in error.errors():
        loc = [p for p in item["loc"] if p not in ("function-after", "function-wrap")]
        field = ".".join(str(p) for p in loc) or "(recipe)"
        override = _override_of(loc, overrides) if loc else None
        line = _line_of(root, loc) if root is not None and override is None else None
        where = f" (--set {override})" if override else f" (line {line})" if line else ""
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field" + _suggestion(loc)
        elif item["type"] == "missing":
            message = "missing field"
        lines.append(f"{field}{where}: {message}")
    count = len(lines)
    header = f"{source}: {count} problem{'s' if count > 1 else ''}"
    return header + "\n  " + "\n  ".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"(line {line}): duplicate key {key!r} (first given on line {seen[key]}); "
                    "YAML would silently keep the last one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def read_recipe_text(path: Path) -> str:
    """The text of recipe file ``path``, or a :class:`ConfigError` saying why it is not one."""
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a recipe file (a .yaml file) instead")
    if not path.is_file():
        raise ConfigError(f"recipe file not found: {path}")
    data = path.read_bytes()
    if b"\0" in data:
        raise ConfigError(f"{path}: a binary file, not a YAML recipe")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} (line {line}): not UTF-8 text (byte 0x{data[error.start]:02x}); "
            "save the recipe as UTF-8"
        ) from None


def parse_recipe_text(text: str, source: str) -> tuple[dict[str, Any], yaml.Node | None]:
    """The mapping a recipe's YAML text holds and its node tree (for line numbers)."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
        root = yaml.compose(text)
    except ConfigError as error:
        raise ConfigError(f"{source} {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a recipe must be a YAML mapping, got {type(data).__name__}")
    return data, root


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override and validate a recipe file.

    Raises:
        ConfigError: For a missing, binary, non-UTF-8 or unparsable file, a key given twice,
            or any invalid field; the message lists every problem with its field path and
            its line (or the ``--set`` override that set it).
    """
    path = Path(path)
    data, root = parse_recipe_text(read_recipe_text(path), str(path))
    data = apply_overrides(data, overrides)
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_recipe_errors(error, str(path), root, overrides)) from None


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe (every default filled in) as YAML."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)


def locate_field_error(message: str, path: str | os.PathLike[str] | None,
                       overrides: Sequence[str] = ()) -> str:
    """A ``"<field.path>: <problem>"`` message with the recipe file and the field's line put
    in front (or the ``--set`` override that set the field); unchanged when the message
    names no field or there is no file to point into."""
    field, sep, problem = message.partition(": ")
    if not sep or " " in field or path is None or not Path(path).is_file():
        return message
    keys: list[Any] = [int(k) if k.isdigit() else k for k in field.split(".")]
    override = _override_of(keys, overrides)
    if override is not None:
        return f"{path}: {field} (--set {override}): {problem}"
    try:
        _, root = parse_recipe_text(read_recipe_text(Path(path)), str(path))
    except ConfigError:
        return message
    return f"{path} (line {_line_of(root, keys)}): {field}: {problem}"
