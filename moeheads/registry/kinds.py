"""The component kinds a recipe names, and their registries."""

from __future__ import annotations

import importlib
from typing import Any

from moeheads._version import __version__
from moeheads.errors import MoeheadsError
from moeheads.registry.base import Registry

#: The component kinds a recipe names (and ``moeheads list`` shows): kind -> "module:REGISTRY".
COMPONENT_KINDS: dict[str, str] = {
    "routers": "moeheads.routers:ROUTERS",
    "losses": "moeheads.losses:LOSSES",
    "backbones": "moeheads.backbones:BACKBONES",
    "datasets": "moeheads.data:DATASETS",
    "loggers": "moeheads.loggers:LOGGERS",
}


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
