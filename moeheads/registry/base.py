"""A registry of named components: register, validate options, create, list."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from moeheads.errors import ConfigError
from moeheads.registry.options import (
    describe_validation_error,
    options_from_signature,
    with_defaults,
)
from moeheads.registry.plugins import load_plugins
from moeheads.registry.text import first_line

T = TypeVar("T")


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
                model = with_defaults(model, defaults)
            summary = description or first_line(builder.__doc__) or name
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
