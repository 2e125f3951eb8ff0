"""Components from other packages: entry points of the ``moeheads.plugins`` group."""

from __future__ import annotations

import inspect
from importlib import metadata

PLUGIN_GROUP = "moeheads.plugins"

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
