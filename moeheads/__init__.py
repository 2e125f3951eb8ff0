"""moeheads: mixture-of-experts projection heads for self-supervised learning.

The core pieces: :class:`ExpertBank` (N expert MLPs computed in one batched
operation), routers (``create_router``, ``ROUTERS``) that give per-task gates, and
:class:`MoEHeads`, which mixes the experts per task.

A whole run is one call: ``moeheads.run(recipe_or_path, overrides=[...])`` pretrains
and evaluates as a recipe says, and ``moeheads.evaluate(run_dir, protocol, **options)``
evaluates a trained model (see :mod:`moeheads.api`). Both are imported on first use, so
``import moeheads`` loads only the heads.
"""

from typing import Any

from moeheads._version import __version__
from moeheads.errors import CheckpointError, ConfigError, DataError, MoeheadsError
from moeheads.experts import ExpertBank
from moeheads.heads import HeadOutput, MoEHeads
from moeheads.registry import Registry
from moeheads.routers import ROUTERS, Router, RouterOutput, create_router
from moeheads.routing_stats import RoutingStats, routing_stats

#: Names resolved from :mod:`moeheads.api` on first use.
_API = ("Evaluation", "RunResults", "evaluate", "run", "validate")

__all__ = [
    "ROUTERS",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ExpertBank",
    "HeadOutput",
    "MoEHeads",
    "MoeheadsError",
    "Registry",
    "Router",
    "RouterOutput",
    "RoutingStats",
    "__version__",
    "create_router",
    "routing_stats",
    *_API,
]


def __getattr__(name: str) -> Any:
    if name in _API:
        from moeheads import api

        return getattr(api, name)
    raise AttributeError(f"module 'moeheads' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
