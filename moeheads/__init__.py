"""moeheads: mixture-of-experts projection heads for self-supervised learning.

The core pieces: [`ExpertBank`][moeheads.heads.bank.ExpertBank] (N expert MLPs computed in
one batched operation), routers (``create_router``, ``ROUTERS``) that give per-task
gates, and [`MoEHeads`][moeheads.heads.mixture.MoEHeads], which mixes the experts per task.

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
    from moeheads.assembly.objective import Objective, TaskSpec
    from moeheads.errors import CheckpointError, ConfigError, DataError, MoeheadsError
    from moeheads.heads import (
        ExpertBank,
        HeadOutput,
        MoEHeads,
        RoutingStats,
        TaskHead,
        routing_stats,
    )
    from moeheads.registry import Registry
    from moeheads.routers import ROUTERS, Router, RouterOutput, create_router

#: Public name -> the module it is imported from on first use.
_LAZY = {
    "CheckpointError": "moeheads.errors",
    "ConfigError": "moeheads.errors",
    "DataError": "moeheads.errors",
    "MoeheadsError": "moeheads.errors",
    "ExpertBank": "moeheads.heads",
    "HeadOutput": "moeheads.heads",
    "MoEHeads": "moeheads.heads",
    "TaskHead": "moeheads.heads",
    "Objective": "moeheads.assembly.objective",
    "TaskSpec": "moeheads.assembly.objective",
    "Registry": "moeheads.registry",
    "ROUTERS": "moeheads.routers",
    "Router": "moeheads.routers",
    "RouterOutput": "moeheads.routers",
    "create_router": "moeheads.routers",
    "RoutingStats": "moeheads.heads",
    "routing_stats": "moeheads.heads",
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
    "Objective",
    "Registry",
    "Router",
    "RouterOutput",
    "RoutingStats",
    "RunResults",
    "TaskHead",
    "TaskSpec",
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
