"""The pretraining model: backbone + MoE heads + task losses, one forward per step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from moeheads.assembly.objective import Objective
from moeheads.backbones import Backbone
from moeheads.heads import HeadOutput, MoEHeads, stack_head_outputs
from moeheads.losses.base import LossOutput
from moeheads.losses.ema import EMA
from moeheads.views import ParamStandardizer, PreparedViews

#: Where the backbone's weights sit in a :class:`PretrainModel`'s state dict.
BACKBONE_PREFIX = "encoder.backbone.module."


class Encoder(nn.Module):
    """Backbone followed by the heads: the part a momentum target copies.

    Args:
        backbone: Images ``[B, 3, H, W]`` -> features ``[B, d]``.
        heads: Features -> per-task embeddings.
        passes: ``separate``: one backbone (and head) call per group of images, so
            BatchNorm sees each group's own statistics (STAR); ``joint``: one call for all.
    """

    def __init__(
        self, backbone: Backbone, heads: MoEHeads,
        passes: Literal["separate", "joint"] = "separate",
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = heads
        self.passes = passes

    def features(self, groups: list[Tensor]) -> list[Tensor]:
        """Backbone features of each group of images ``[B, 3, H, W]``."""
        if self.passes == "separate" or len(groups) == 1:
            return [self.backbone(images) for images in groups]
        sizes = [len(images) for images in groups]
        return list(self.backbone(torch.cat(groups)).split(sizes))

    def project(
        self, views: list[Tensor], original: Tensor | None = None
    ) -> tuple[HeadOutput, HeadOutput | None]:
        """Head outputs of the views' features (embeddings ``[V, B, D]``) and the original's.

        ``separate``: every group, the original included, with its own BatchNorm
        statistics, all in one pass of the experts; ``joint``: the views together.
        Running statistics are updated original first, then view 1, view 2, ...
        """
        # the original goes first, then the views (the authors' order, which decides the
        # BatchNorm running statistics)
        if self.passes == "joint":
            head_original = None if original is None else self.heads(original)
            return self.heads(torch.stack(views)), head_original
        groups = views if original is None else [original, *views]
        outputs = self.heads.forward_groups(torch.stack(groups))
        first = 0 if original is None else 1
        return stack_head_outputs(outputs[first:]), None if original is None else outputs[0]

    def forward(self, views: Tensor) -> HeadOutput:
        """Head outputs of views ``[V, B, 3, H, W]`` (embeddings ``[V, B, D]``)."""
        return self.project(self.features(list(views.unbind(0))))[0]


@dataclass
class StepOutput:
    """What one training forward gives.

    Attributes:
        loss: Total loss and its parts.
        gates: Per-task gates of the views ``[V, B, N]`` (detached), for routing statistics.
        features: The backbone's features of every group of images (in the graph), where
            each task's gradient reaches the backbone.
    """

    loss: LossOutput
    gates: dict[str, Tensor]
    features: list[Tensor] = field(default_factory=list)


class PretrainModel(nn.Module):
    """Everything trained in pretraining, with a forward from prepared views to the loss.

    Computes only what the objective reads (:attr:`Objective.inputs`): the original
    image's embeddings for equivariant losses, backbone features for AugSelf, a
    momentum target's embeddings for BYOL.

    Args:
        encoder: Backbone and heads.
        objective: The task losses (they own their predictors).
        standardizer: Standardises augmentation parameters before the losses see them.
        target: A momentum copy of the encoder, when a loss needs targets.
    """

    def __init__(
        self, encoder: Encoder, objective: Objective, standardizer: ParamStandardizer,
        target: EMA | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.objective = objective
        self.standardizer = standardizer
        self.target = target

    @property
    def backbone(self) -> Backbone:
        """The backbone (what is exported and evaluated)."""
        return self.encoder.backbone

    @property
    def needs_original(self) -> bool:
        """Whether the objective reads the original image's embeddings."""
        return "original" in self.objective.inputs

    def forward(self, batch: PreparedViews) -> StepOutput:
        """Loss of one batch of prepared views."""
        groups = list(batch.views.unbind(0))
        with_original = self.needs_original and batch.original is not None
        if with_original:  # original, view 1, view 2: the authors' backbone pass order
            groups.insert(0, batch.original)
        features = self.encoder.features(groups)
        view_features = features[1:] if with_original else features
        views, original = self.encoder.project(
            view_features, features[0] if with_original else None
        )
        inputs = self.objective.inputs
        targets = self.target(batch.views) if self.target is not None else None
        loss = self.objective(
            views,
            params=self.standardizer(batch.params) if "params" in inputs else None,
            original=original,
            features=torch.stack(view_features) if "features" in inputs else None,
            targets=targets,
        )
        gates = {task: g.detach() for task, g in views.gates.items()}
        return StepOutput(loss, gates, features)
