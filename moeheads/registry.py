"""A generic registry of named components (routers, losses, backbones, datasets).

Each registered component is a class or factory function plus a pydantic model
of its options. The options model is taken, in this order, from the
``options=`` argument of :meth:`Registry.register`, from a nested ``Options``
class, or derived from the call signature (type hints and defaults). Unknown
options are errors, so Python calls and YAML recipes are validated by the same
model.

Example:
    >>> from moeheads.registry import Registry
    >>> activations = Registry("activation")
    >>> @activations.register("scaled_relu")
    ... class ScaledReLU:
    ...     '''ReLU times a constant.'''
    ...     def __init__(self, scale: float = 2.0):
    ...         self.scale = scale
    >>> activations.create("scaled_relu", scale=3).scale
    3.0
    >>> activations.list("scaled*")
    ['scaled_relu']
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from moeheads._version import __version__
from moeheads.errors import ConfigError, MoeheadsError

T = TypeVar("T")

PLUGIN_GROUP = "moeheads.plugins"

#: The component kinds a recipe names (and ``moeheads list`` shows): kind -> "module:REGISTRY".
COMPONENT_KINDS: dict[str, str] = {
    "routers": "moeheads.routers:ROUTERS",
    "losses": "moeheads.losses:LOSSES",
    "backbones": "moeheads.backbones:BACKBONES",
    "datasets": "moeheads.data:DATASETS",
    "loggers": "moeheads.loggers:LOGGERS",
}
_plugins_loaded = False


def load_plugins() -> None:
    """Import every entry point of the ``moeheads.plugins`` group (once per process).

    A plugin entry point names a module (imported, so its ``register`` decorators
    run) or a callable (called with no arguments).
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry_point in metadata.entry_points(group=PLUGIN_GROUP):
        loaded = entry_point.load()
        if callable(loaded) and not inspect.ismodule(loaded):
            loaded()


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: its name, the object that builds it and its options model."""

    name: str
    builder: Callable[..., T]
    options: type[BaseModel]
    description: str

    def option_names(self) -> list[str]:
        """Names of the options this component accepts."""
        return list(self.options.model_fields)


class Registry(Generic[T]):
    """Named components of one kind, created by name with validated options.

    Args:
        kind: What the registry holds, used in messages (``"router"``, ``"loss"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        name: str,
        *,
        options: type[BaseModel] | None = None,
        description: str | None = None,
        defaults: dict[str, Any] | None = None,
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers a class or factory under ``name``.

        Args:
            name: Unique name of the component.
            options: Pydantic model of the options; derived from the signature when omitted.
            description: One-line description; the first docstring line when omitted.
            defaults: Option defaults that override the signature's (to register one
                class several times with different defaults).

        Raises:
            ConfigError: If ``name`` is already registered.
        """

        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ConfigError(f"{self.kind} {name!r} is already registered")
            model = options or getattr(builder, "Options", None)
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                model = options_from_signature(builder, f"{name}_options", defaults or {})
            elif defaults:
                model = _with_defaults(model, defaults)
            summary = description or _first_line(builder.__doc__) or name
            self._entries[name] = Entry(name, builder, model, summary)
            return builder

        return decorator

    def unregister(self, name: str) -> None:
        """Remove a component (mainly for tests and interactive sessions)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry[T]:
        """The entry registered under ``name``.

        Raises:
            ConfigError: Naming the closest registered names when ``name`` is unknown.
        """
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(self._unknown_message(name)) from None

    def validate(
        self, name: str, options: dict[str, Any], provided: Iterable[str] = ()
    ) -> BaseModel | None:
        """Validate ``options`` for component ``name`` without building it.

        Args:
            name: The component.
            options: Its options.
            provided: Options supplied later by the caller (e.g. a router's
                ``in_features``): not reported as missing.

        Returns:
            The validated options, or ``None`` when some ``provided`` ones were absent.

        Raises:
            ConfigError: Naming the unknown or invalid option.
        """
        entry = self.get(name)
        try:
            return entry.options.model_validate(options)
        except ValidationError as error:
            provided = set(provided)
            problems = [
                e for e in error.errors()
                if not (e["type"] == "missing" and e["loc"] and e["loc"][0] in provided)
            ]
            if not problems:
                return None
            owner = f"{self.kind} {name!r}"
            raise ConfigError(
                describe_validation_error(problems, owner, entry.option_names())
            ) from None

    def create(self, name: str, **options: Any) -> T:
        """Build component ``name`` with ``options`` after validating them."""
        validated = self.validate(name, options)
        assert validated is not None
        return self.get(name).builder(**dict(validated))

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching an fnmatch ``pattern`` (``"top*"``, ``"*mo*"``)."""
        load_plugins()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def describe(self, pattern: str = "*") -> list[tuple[str, str]]:
        """``(name, one-line description)`` for each name matching ``pattern``."""
        return [(n, self._entries[n].description) for n in self.list(pattern)]

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())

    def _unknown_message(self, name: str) -> str:
        known = self.list()
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (registered: {', '.join(known) or 'none'})"


def registry_for(kind: str) -> Registry[Any]:
    """The registry of a component kind (``routers``, ``losses``, ``backbones``, ``datasets``).

    The registry's module is imported on first use, so that reading a recipe loads
    only the component families it names.

    Raises:
        MoeheadsError: An unknown kind, or one whose module is not installed.
    """
    if kind not in COMPONENT_KINDS:
        raise MoeheadsError(
            f"unknown component kind {kind!r}; choose one of {', '.join(COMPONENT_KINDS)}"
        )
    module_name, attribute = COMPONENT_KINDS[kind].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise MoeheadsError(f"no {kind} are available in moeheads {__version__}") from None
    return getattr(module, attribute)


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


def _with_defaults(model: type[BaseModel], defaults: dict[str, Any]) -> type[BaseModel]:
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


def _first_line(doc: str | None) -> str:
    return plain_text(inspect.cleandoc(doc).splitlines()[0].rstrip(".")) if doc else ""


_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")  # :class:`~a.b.C` -> C, :func:`f` -> f
_MARKUP = (
    (re.compile(r"\[`?([^\]`]+)`?\]\[[^\]]*\]"), r"\1"),  # [`C`][a.b.C] -> C
    (re.compile(r"``([^`]+)``"), r"\1"),  # ``depth`` -> depth
    (re.compile(r"`([^`]+)`"), r"\1"),
)


def plain_text(text: str) -> str:
    """Docstring markup (reST literals, Sphinx roles, Markdown code and references) removed.

    Example:
        >>> plain_text("A CNN: ``depth`` stages of :class:`~torch.nn.Conv2d`")
        'A CNN: depth stages of Conv2d'
    """
    text = _ROLE.sub(lambda m: m.group(2).rpartition(".")[2] if m.group(1) else m.group(2), text)
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text
