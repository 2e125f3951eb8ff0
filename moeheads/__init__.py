"""moeheads: mixture-of-experts projection heads for self-supervised learning.

The core pieces: [`ExpertBank`][moeheads.experts.ExpertBank] (N expert MLPs computed in
one batched operation), routers (``create_router``, ``ROUTERS``) that give per-task
gates, and [`MoEHeads`][moeheads.heads.MoEHeads], which mixes the experts per task.

A whole run is one call: ``moeheads.run(recipe_or_path, overrides=[...])`` pretrains
and evaluates as a recipe says, and ``moeheads.evaluate(run_dir, protocol, **options)``
evaluates a trained model (see [`moeheads.api`][moeheads.api]). Every name is imported
on first use, so ``import moeheads`` (and ``moeheads --help``) loads neither torch nor
the training engine until a name that needs them is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from moeheads._version import __version__

if TYPE_CHECKING:
    from moeheads.api import Evaluation, RunResults, evaluate, run, validate
    from moeheads.errors import CheckpointError, ConfigError, DataError, MoeheadsError
    from moeheads.experts import ExpertBank
    from moeheads.heads import HeadOutput, MoEHeads, TaskHead
    from moeheads.registry import Registry
    from moeheads.routers import ROUTERS, Router, RouterOutput, create_router
    from moeheads.routing_stats import RoutingStats, routing_stats

#: Public name -> the module it is imported from on first use.
_LAZY = {
    "CheckpointError": "moeheads.errors",
    "ConfigError": "moeheads.errors",
    "DataError": "moeheads.errors",
    "MoeheadsError": "moeheads.errors",
    "ExpertBank": "moeheads.experts",
    "HeadOutput": "moeheads.heads",
    "MoEHeads": "moeheads.heads",
    "TaskHead": "moeheads.heads",
    "Registry": "moeheads.registry",
    "ROUTERS": "moeheads.routers",
    "Router": "moeheads.routers",
    "RouterOutput": "moeheads.routers",
    "create_router": "moeheads.routers",
    "RoutingStats": "moeheads.routing_stats",
    "routing_stats": "moeheads.routing_stats",
    "Evaluation": "moeheads.api",
    "RunResults": "moeheads.api",
    "evaluate": "moeheads.api",
    "run": "moeheads.api",
    "validate": "moeheads.api",
}

__all__ = [
    "ROUTERS",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Evaluation",
    "ExpertBank",
    "HeadOutput",
    "MoEHeads",
    "MoeheadsError",
    "Registry",
    "Router",
    "RouterOutput",
    "RoutingStats",
    "RunResults",
    "TaskHead",
    "__version__",
    "create_router",
    "evaluate",
    "routing_stats",
    "run",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'moeheads' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
