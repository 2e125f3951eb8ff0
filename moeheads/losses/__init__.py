"""Task losses: invariant, equivariant and feature objectives, and their composition.

Registered losses (``moeheads list losses``): ``ntxent`` (SimCLR), ``vicreg``,
``barlow`` (Barlow Twins), ``byol`` (invariant, called ``loss(z1, z2)``);
``equimod`` and ``star_eq`` (equivariant, called ``loss(z_views, z_original,
params)``); ``augself`` (called ``loss(h_views, params)`` on backbone features).
:class:`Objective` sums weighted task losses and the heads' auxiliary losses.
Write your own by subclassing :class:`TaskLoss` (or :class:`InvariantLoss`) and
registering it with ``@LOSSES.register("name")``.
"""

from moeheads.losses import augself, barlow, byol, equimod, ntxent, star_eq, vicreg  # noqa: F401
from moeheads.losses.augself import AugSelfLoss
from moeheads.losses.barlow import BarlowTwinsLoss
from moeheads.losses.base import (
    LOSSES,
    LossOutput,
    TaskInputs,
    TaskLoss,
    TensorLoss,
    create_loss,
)
from moeheads.losses.byol import BYOLLoss
from moeheads.losses.ema import EMA, cosine_momentum
from moeheads.losses.equimod import EquiModLoss
from moeheads.losses.equivariant import EquivariantPredictor, PredictiveEquivariantLoss
from moeheads.losses.invariant import InvariantLoss
from moeheads.losses.ntxent import NTXentLoss, nt_xent
from moeheads.losses.star_eq import STAREquivariantLoss
from moeheads.losses.vicreg import VICRegLoss
from moeheads.runtime.gather import all_gather

__all__ = [
    "EMA",
    "LOSSES",
    "AugSelfLoss",
    "BYOLLoss",
    "BarlowTwinsLoss",
    "EquiModLoss",
    "EquivariantPredictor",
    "InvariantLoss",
    "LossOutput",
    "NTXentLoss",
    "PredictiveEquivariantLoss",
    "STAREquivariantLoss",
    "TaskInputs",
    "TaskLoss",
    "TensorLoss",
    "VICRegLoss",
    "all_gather",
    "cosine_momentum",
    "create_loss",
    "nt_xent",
]
