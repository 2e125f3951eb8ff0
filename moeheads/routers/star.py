"""STAR: Soft Task-Aware Routing of experts (Jang et al., NeurIPS 2025, arXiv 2510.27222).

``s^t = softmax(R^t(h))`` with ``R^t = Linear(d, N)`` (with bias) per task ``t``;
the task embedding is ``z^t = sum_k s^t_k E_k(h)``. Input-dependent, dense, no
noise, no top-k, no load-balancing loss, not detached from the backbone. Same
mechanism as :mod:`moeheads.routers.mmoe`, registered with ``bias=True``; the
``temperature`` and ``detach_input`` options default to the paper's plain setting.
"""

from __future__ import annotations

from moeheads.routers.base import ROUTERS
from moeheads.routers.soft import SoftGateRouter

ROUTERS.register(
    "star",
    description="STAR soft task-aware routing: a dense softmax gate (with bias) per task",
    defaults={"bias": True},
)(SoftGateRouter)
