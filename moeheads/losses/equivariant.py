"""Predictive equivariant losses: predict a view's embedding from the original's.

An equivariant loss is called ``loss(z_views, z_original, params)``:

* ``z_views[V, B, D]``: the equivariant task's embeddings of V views of B images;
* ``z_original[B, D]``: its embedding of the un-augmented images;
* ``params[V, B, P]``: each view's standardised augmentation parameters.

A predictor maps ``(z_original, params[v])`` to ``zhat[v]``; NT-Xent then pairs the
``V*B`` targets with the ``V*B`` predictions: the positive of each target is its own
prediction, and every other target and prediction (the other views of the same
image included) is a negative. EquiMod (no residual) and STAR (residual) differ only
in the predictor.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.losses.base import LossOutput, TaskInputs, TaskLoss, check_embeddings
from moeheads.losses.mlp import mlp
from moeheads.losses.ntxent import nt_xent
from moeheads.numerics.grouped_norm import grouped_batch_norm


class EquivariantPredictor(nn.Module):
    """``zhat_v = [z_o +] phi([z_o ; psi(a_v)])`` for every view v in one batched pass.

    ``psi = Linear(P, param_embed_dim)``;
    ``phi = Linear(D + param_embed_dim, hidden, no bias)-BN-ReLU-Linear(hidden, hidden,
    no bias)-BN-ReLU-Linear(hidden, D)``. With ``batch_norm="per_view"`` (the default)
    each view's B rows are normalised with their own batch statistics and the running
    statistics are updated view after view, as the authors' one predictor call per view
    does; all views still run in one pass
    (:func:`~moeheads.numerics.grouped_norm.grouped_batch_norm`).
    ``batch_norm="joint"`` normalises all ``V*B`` rows together.

    Args:
        embed_dim: Embedding width D.
        param_dim: Augmentation parameters per view P.
        param_embed_dim: Width of psi's output.
        hidden_dim: Hidden width of phi.
        residual: Add ``z_o`` to phi's output (STAR) or not (EquiMod).
        batch_norm: ``per_view`` or ``joint`` BatchNorm statistics in phi.

    Example:
        >>> predictor = EquivariantPredictor(embed_dim=128, param_dim=11, residual=True)
        >>> predictor(torch.randn(4, 128), torch.randn(2, 4, 11)).shape
        torch.Size([2, 4, 128])
    """

    def __init__(
        self,
        embed_dim: int = 128,
        param_dim: int = 11,
        param_embed_dim: int = 128,
        hidden_dim: int = 512,
        residual: bool = True,
        batch_norm: Literal["per_view", "joint"] = "per_view",
    ) -> None:
        super().__init__()
        if batch_norm not in ("per_view", "joint"):
            raise ConfigError(f"batch_norm must be 'per_view' or 'joint', got {batch_norm!r}")
        self.batch_norm = batch_norm
        self.embed_dim = embed_dim
        self.param_dim = param_dim
        self.residual = residual
        self.psi = nn.Linear(param_dim, param_embed_dim)
        self.phi = mlp(embed_dim + param_embed_dim, hidden_dim, embed_dim, num_hidden=2)

    def forward(self, z_original: Tensor, params: Tensor) -> Tensor:
        """Predictions ``[V, B, D]`` from ``z_original[B, D]`` and ``params[V, B, P]``."""
        views, batch = params.shape[:2]
        z_o = z_original.unsqueeze(0).expand(views, -1, -1)
        x = torch.cat([z_o, self.psi(params.to(z_original.dtype))], dim=-1)
        if self.batch_norm == "joint" or views == 1:
            out = self.phi(x.reshape(views * batch, -1)).reshape(views, batch, -1)
        else:
            out = x
            for layer in self.phi:
                if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                    # [V, B, C] -> [B, V*C], view v's channels side by side (group-major)
                    rows = out.transpose(0, 1).reshape(batch, -1)
                    rows = grouped_batch_norm(layer, rows, views, group_major=True)
                    out = rows.reshape(batch, views, -1).transpose(0, 1)
                else:
                    out = layer(out)
        return z_o + out if self.residual else out


class PredictiveEquivariantLoss(TaskLoss):
    """NT-Xent between view embeddings and their predictions from the original.

    The shared mechanism of :class:`~moeheads.losses.equimod.EquiModLoss` and
    :class:`~moeheads.losses.star_eq.STAREquivariantLoss`, which set the class
    attribute ``residual``: STAR's residual predictor (True) or EquiMod's (False).

    Args:
        embed_dim: Embedding width D.
        param_dim: Augmentation parameters per view P.
        param_embed_dim: Width of psi's output.
        hidden_dim: Hidden width of phi.
        temperature: NT-Xent temperature.
        gather_distributed: Gather targets and predictions from all ranks.
        predictor_norm: BatchNorm statistics of the predictor: ``per_view`` (the
            authors' one predictor call per view) or ``joint`` (all views together).
    """

    inputs = frozenset({"views", "original", "params"})
    kind = "equivariant"
    residual: ClassVar[bool] = True

    def __init__(
        self,
        embed_dim: int = 128,
        param_dim: int = 11,
        param_embed_dim: int = 128,
        hidden_dim: int = 512,
        temperature: float = 0.2,
        gather_distributed: bool = True,
        predictor_norm: Literal["per_view", "joint"] = "per_view",
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"{self.name}: temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.gather_distributed = gather_distributed
        self.predictor = EquivariantPredictor(
            embed_dim, param_dim, param_embed_dim, hidden_dim, self.residual, predictor_norm
        )

    def check_inputs(self, z_views: Tensor, z_original: Tensor, params: Tensor) -> None:
        """Raise a :class:`~moeheads.errors.ConfigError` for inconsistent shapes."""
        check_embeddings(z_views, self.name, dims=3, min_batch=2)
        views, batch, dim = z_views.shape
        embed_dim, param_dim = self.predictor.embed_dim, self.predictor.param_dim
        if dim != embed_dim:
            raise ShapeError(f"{self.name}: embed_dim is {embed_dim} but z_views has {dim}")
        if tuple(z_original.shape) != (batch, dim):
            raise ShapeError(
                f"{self.name}: z_original must be [{batch}, {dim}] to match z_views "
                f"{list(z_views.shape)}, got {list(z_original.shape)}"
            )
        if params.dim() != 3 or tuple(params.shape[:2]) != (views, batch):
            raise ShapeError(
                f"{self.name}: params must be [{views}, {batch}, P] to match z_views, "
                f"got {list(params.shape)}"
            )
        if params.shape[-1] != param_dim:
            raise ShapeError(
                f"{self.name}: param_dim is {param_dim} but params has {params.shape[-1]} "
                "values per view"
            )

    def forward(self, z_views: Tensor, z_original: Tensor, params: Tensor) -> LossOutput:
        """The loss for ``z_views[V, B, D]``, ``z_original[B, D]``, ``params[V, B, P]``.

        Returns:
            The NT-Xent loss, with the mean cosine similarity between each target and its
            prediction as the part ``prediction_cosine`` (for logging).
        """
        self.check_inputs(z_views, z_original, params)
        dim = z_views.shape[-1]
        targets = z_views.reshape(-1, dim)
        predictions = self.predictor(z_original, params).reshape(-1, dim)
        loss = nt_xent(targets, predictions, self.temperature, self.gather_distributed, self.name)
        cosine = F.cosine_similarity(targets.detach().float(), predictions.detach().float()).mean()
        return LossOutput(loss, {"prediction_cosine": cosine})

    def from_inputs(self, inputs: TaskInputs) -> LossOutput:
        """The loss from ``inputs.views``, ``inputs.original`` and ``inputs.params``."""
        original = inputs.require("original", self.name)
        return self(inputs.views, original, inputs.require("params", self.name))

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather_distributed={self.gather_distributed}"
