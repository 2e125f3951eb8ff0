"""A module proxy that imports its module on first attribute access.

``moeheads list`` and ``moeheads --help`` import the component registries without
using torchvision; modules that need torchvision only inside their functions name it
through :func:`lazy_import`, so it is loaded when a dataset or view is actually built.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class _LazyModule(types.ModuleType):
    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)


def lazy_import(name: str) -> Any:
    """A stand-in for module ``name`` that imports it when an attribute is first read."""
    return _LazyModule(name)
