"""Generate the recipe reference page from the pydantic models (run by mkdocs-gen-files)."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any, get_args, get_origin

import mkdocs_gen_files
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from moeheads.recipe.schema import (  # noqa: E402
    BackboneConfig,
    DataConfig,
    EvaluationStage,
    HeadsConfig,
    MonitorConfig,
    OptimizerConfig,
    Recipe,
    ScheduleConfig,
    TaskConfig,
    TrainerConfig,
    ViewsConfig,
)
from moeheads.views.options import ViewOptions  # noqa: E402

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("recipe (top level)", Recipe),
    ("data", DataConfig),
    ("views", ViewsConfig),
    ("backbone", BackboneConfig),
    ("heads", HeadsConfig),
    ("tasks.&lt;task&gt;", TaskConfig),
    ("optimizer", OptimizerConfig),
    ("schedule", ScheduleConfig),
    ("trainer", TrainerConfig),
    ("monitor", MonitorConfig),
    ("evaluation[]", EvaluationStage),
]


def attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """``Attributes:`` entries of the model's (and its bases') Google-style docstrings."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        text = inspect.cleandoc(cls.__doc__ or "")
        if "Attributes:" not in text:
            continue
        block = text.split("Attributes:", 1)[1]
        current = None
        for line in block.splitlines():
            match = re.match(r"^ {4}(\w+): (.*)$", line)
            if match:
                current = match.group(1)
                docs[current] = match.group(2)
            elif current and line.startswith(" " * 8):
                docs[current] += " " + line.strip()
            elif line.strip() and not line.startswith(" "):
                break
    return docs


def markdown(text: str) -> str:
    """Sphinx roles as links (qualified names) or inline code (short names)."""

    def link(match: re.Match[str]) -> str:
        target = match.group(2)
        shown = target.split(".")[-1] if match.group(1) else target
        return f"[`{shown}`][{target}]" if target.startswith("moeheads.") else f"`{shown}`"

    return re.sub(r":[a-z]+:`(~?)([^`]+)`", link, text)


def type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is None:
        return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")
    args = ", ".join(type_name(a) for a in get_args(annotation))
    name = getattr(origin, "__name__", str(origin)).replace("UnionType", "union")
    if name in ("Union", "union"):
        return " | ".join(type_name(a) for a in get_args(annotation))
    if name == "Literal":
        return " | ".join(repr(a) for a in get_args(annotation))
    return f"{name}[{args}]"


def default_text(info: Any) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.default_factory()
        return "(defaults below)" if isinstance(value, BaseModel) else f"`{value!r}`"
    if info.default is PydanticUndefined:
        return ""
    return f"`{info.default!r}`"


with mkdocs_gen_files.open("recipe-reference.md", "w") as page:
    page.write("# Recipe reference\n\n")
    page.write(
        "Generated from the pydantic models in `moeheads.recipe.schema`, the same models that\n"
        "validate every recipe. Unknown keys are errors. Components (`data.dataset`,\n"
        "`backbone`, `heads.router`, `tasks.<task>`) take `name` plus the options of the\n"
        "registered component, listed by `moeheads list KIND` and in the API reference.\n\n"
    )
    for title, model in SECTIONS:
        docs = attribute_docs(model)
        page.write(f"## `{title}`\n\n")
        first = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].replace("\n", " ")
        first = markdown(first)
        page.write(f"{first}\n\n| field | type | default | meaning |\n|---|---|---|---|\n")
        fields = dict(model.model_fields)
        if model is ViewsConfig:
            fields = {**{k: fields[k] for k in ("num_views", "original")},
                      **{k: v for k, v in fields.items() if k in ViewOptions.model_fields}}
        for name, info in fields.items():
            meaning = markdown(docs.get(name, "")).replace("|", "\\|")
            kind = type_name(info.annotation).replace("|", "\\|")
            page.write(f"| `{name}` | {kind} | {default_text(info)} | {meaning} |\n")
        if model is TaskConfig:
            page.write("| *loss options* | | | every option of the named loss |\n")
        if model in (BackboneConfig, EvaluationStage):
            page.write("| *options* | | | the options of the named component |\n")
        page.write("\n")
