"""Routing strategies: each maps features to per-task gates over experts.

Registered strategies (``moeheads list routers``): ``hard`` (separate heads),
``shared`` (STAR-SS), ``topk`` (noisy top-k), ``mmoe`` and ``star`` (dense soft
gates per task). Write your own by subclassing :class:`Router` and registering
it with ``@ROUTERS.register("name")``.
"""

from moeheads.routers import hard, mmoe, shared, star, topk  # noqa: F401  (registers)
from moeheads.routers.base import ROUTERS, Router, RouterOutput, create_router
from moeheads.routers.hard import HardRouter
from moeheads.routers.shared import SharedRouter
from moeheads.routers.soft import SoftGateRouter
from moeheads.routers.topk import TopKRouter

__all__ = [
    "ROUTERS",
    "HardRouter",
    "Router",
    "RouterOutput",
    "SharedRouter",
    "SoftGateRouter",
    "TopKRouter",
    "create_router",
]
