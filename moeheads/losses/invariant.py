"""The invariant-loss contract: two views' embeddings in, one scalar out.

An invariant loss is called ``loss(z1, z2)`` with ``[B, D]`` embeddings of two
views of the same B images. With V > 2 views the objective averages the loss over
all ``V (V - 1) / 2`` view pairs (:meth:`InvariantLoss.from_inputs`).
"""

from __future__ import annotations

from itertools import combinations

from torch import Tensor

from moeheads.errors import ShapeError
from moeheads.losses.base import (
    LossOutput,
    TaskInputs,
    TaskLoss,
    check_embeddings,
    check_same_shape,
    mean_outputs,
)


def view_pairs(num_views: int) -> list[tuple[int, int]]:
    """The unordered view pairs ``(i, j)``, ``i < j``.

    Example:
        >>> view_pairs(3)
        [(0, 1), (0, 2), (1, 2)]
    """
    return list(combinations(range(num_views), 2))


class InvariantLoss(TaskLoss):
    """Base class of losses that pull two views' embeddings together.

    Subclasses implement ``forward(z1, z2) -> LossOutput`` for ``[B, D]`` inputs;
    :meth:`check_pair` gives the shared shape errors.
    """

    kind = "invariant"
    min_batch: int = 2

    def forward(self, z1: Tensor, z2: Tensor) -> LossOutput:
        """The loss between ``z1[B, D]`` and ``z2[B, D]`` (implemented by subclasses)."""
        raise NotImplementedError

    def check_pair(self, z1: Tensor, z2: Tensor) -> None:
        """Raise a :class:`~moeheads.errors.ShapeError` for bad ``[B, D]`` pairs."""
        check_embeddings(z1, self.name, dims=2, min_batch=self.min_batch)
        check_same_shape(z1, z2, self.name, ("z1", "z2"))

    def check_views(self, z: Tensor) -> None:
        """Raise a :class:`~moeheads.errors.ShapeError` unless ``z`` is ``[V >= 2, B, D]``."""
        check_embeddings(z, self.name, dims=3, min_batch=self.min_batch)
        if z.shape[0] < 2:
            raise ShapeError(f"{self.name} needs at least 2 views, got {z.shape[0]}")

    def from_inputs(self, inputs: TaskInputs) -> LossOutput:
        """Mean of the loss over all view pairs of ``inputs.views[V, B, D]``."""
        z = inputs.views
        self.check_views(z)
        return mean_outputs([self(z[i], z[j]) for i, j in view_pairs(z.shape[0])])
