"""MMoE: Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).

``g^t(x) = softmax(W_gt x)`` with ``W_gt`` in ``R^{N x d}`` and no bias, one gate
per task over a shared pool of experts. Same mechanism as :mod:`moeheads.routers.star`
(:class:`~moeheads.routers.soft.SoftGateRouter`), registered with the paper's default
``bias=False``.
"""

from __future__ import annotations

from moeheads.routers.base import ROUTERS
from moeheads.routers.soft import SoftGateRouter

ROUTERS.register(
    "mmoe",
    description="Multi-gate MoE (Ma et al. 2018): a bias-free softmax gate per task",
    defaults={"bias": False},
)(SoftGateRouter)
