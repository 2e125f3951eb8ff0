"""Options models of components: derived from a call signature, and their errors in words."""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model


def options_from_signature(
    builder: Callable[..., Any],
    model_name: str,
    defaults: dict[str, Any] | None = None,
    *,
    keyword_only: bool = False,
    exclude: Iterable[str] = (),
) -> type[BaseModel]:
    """A pydantic model (``extra="forbid"``) of the options of ``builder``.

    Args:
        builder: A class (its ``__init__``) or function.
        model_name: Name of the model class.
        defaults: Defaults that replace the signature's.
        keyword_only: Only the keyword-only arguments (a function whose data comes
            positionally and whose options come by keyword).
        exclude: Arguments left out (supplied by the caller, not by an options mapping).
    """
    target = builder.__init__ if inspect.isclass(builder) else builder
    signature = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations: fall back to Any
        hints = {}
    defaults = defaults or {}
    skip = {"self", *exclude}
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.name in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if keyword_only and param.kind is not param.KEYWORD_ONLY:
            continue
        annotation = hints.get(param.name, Any)
        if param.name in defaults:
            fields[param.name] = (annotation, defaults[param.name])
        elif param.default is inspect.Parameter.empty:
            fields[param.name] = (annotation, ...)
        else:
            fields[param.name] = (annotation, param.default)
    config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    return create_model(model_name, __config__=config, **fields)


def with_defaults(model: type[BaseModel], defaults: dict[str, Any]) -> type[BaseModel]:
    """A copy of an options model with other defaults."""
    fields = {
        name: (info.annotation, defaults.get(name, info.default if not info.is_required() else ...))
        for name, info in model.model_fields.items()
    }
    return create_model(model.__name__, __config__=model.model_config, **fields)


def describe_validation_error(
    error: ValidationError | list[Any], owner: str, known: Iterable[str] = ()
) -> str:
    """One line naming each problem's option path, for a ``ValidationError`` or its errors.

    ``known`` option names give suggestions for unknown ones (``did you mean 'k'?``).
    """
    items = error.errors() if isinstance(error, ValidationError) else error
    known = list(known)
    problems = []
    for item in items:
        path = ".".join(str(p) for p in item["loc"]) or "(options)"
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(path, known, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            problems.append(f"unknown option {path!r}{hint}")
        elif item["type"] == "missing":
            problems.append(f"missing option {path!r}")
        else:
            problems.append(f"option {path!r}: {item['msg']}")
    return f"{owner}: " + "; ".join(problems)
