"""moeheads: mixture-of-experts projection heads for self-supervised learning.

The core pieces: :class:`ExpertBank` (N expert MLPs computed in one batched
operation), routers (``create_router``, ``ROUTERS``) that give per-task gates, and
:class:`MoEHeads`, which mixes the experts per task.
"""

from moeheads._version import __version__
from moeheads.errors import CheckpointError, ConfigError, DataError, MoeheadsError
from moeheads.experts import ExpertBank
from moeheads.heads import HeadOutput, MoEHeads
from moeheads.registry import Registry
from moeheads.routers import ROUTERS, Router, RouterOutput, create_router
from moeheads.routing_stats import RoutingStats, routing_stats

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
]
