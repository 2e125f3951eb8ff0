"""AugSelf: predict the difference of two views' augmentation parameters.

Lee, Lee, Shin, Song, Kim, Kim, Shin. "Improving Transferability of Representations
via Augmentation-Aware Self-Supervision". NeurIPS 2021.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.losses.base import LOSSES, LossOutput, TaskInputs, TaskLoss
from moeheads.losses.mlp import mlp
from moeheads.views.layout import BLUR_SIGMA, CROP, FLIP, GRAYSCALE, JITTER

PARAM_GROUPS: dict[str, tuple[int, int]] = {
    "crop": (CROP.start, CROP.stop),
    "flip": (FLIP, FLIP + 1),
    "color": (JITTER.start, JITTER.stop),
    "grayscale": (GRAYSCALE, GRAYSCALE + 1),
    "blur": (BLUR_SIGMA, BLUR_SIGMA + 1),
}
"""Column ranges ``[start, stop)`` of each group in the parameter vector
(:mod:`moeheads.views.layout`): crop top, left, height, width; flip; brightness,
contrast, saturation, hue; grayscale; blur sigma."""


def ordered_pairs(num_views: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Indices ``(i, j)`` of all ordered view pairs with ``i != j``.

    Example:
        >>> ordered_pairs(2)
        (tensor([0, 1]), tensor([1, 0]))
    """
    grid = torch.cartesian_prod(torch.arange(num_views), torch.arange(num_views))
    grid = grid[grid[:, 0] != grid[:, 1]]
    return grid[:, 0].to(device), grid[:, 1].to(device)


@LOSSES.register("augself")
class AugSelfLoss(TaskLoss):
    """AugSelf augmentation-difference prediction loss (Lee et al., NeurIPS 2021).

    Lee, Lee, Shin, Song, Kim, Kim, Shin. "Improving Transferability of Representations
    via Augmentation-Aware Self-Supervision". NeurIPS 2021.

    For each enabled group g (crop, colour, ...), an MLP
    ``Linear(2d, 512, no bias)-BN-ReLU-Linear(512, 512, no bias)-BN-ReLU-Linear(512, n_g)``
    predicts ``(a_i - a_j)[g]`` from the concatenated *backbone features*
    ``[h_i ; h_j]`` of two views; ``L = sum_g w_g * MSE(tanh(pred_g), (a_i - a_j)[g] / s)``
    over both orders of every view pair (the paper's symmetric form). The paper's
    defaults enable crop and colour with weight 1 (STL-10).

    The call is ``loss(h_views, params)`` with ``h_views[V, B, d]`` and standardised
    ``params[V, B, P]``. The paper regresses raw differences that lie in [-1, 1]
    (crop centre and size as fractions of the image, jitter factors scaled by their
    range). moeheads' parameters are standardised to unit variance, so differences are
    divided by ``target_scale`` (4) to fall mostly in (-1, 1), where tanh can reach
    them. The paper encodes crops by their centre (flip-corrected) and treats flip as
    a binary classification; here every group regresses its columns of the parameter
    vector (:data:`PARAM_GROUPS`).

    Args:
        in_features: Backbone feature width d (512 for ResNet-18).
        hidden_dim: Hidden width of each predictor.
        param_dim: Augmentation parameters per view P.
        crop: Weight of the crop group (0 disables it).
        color: Weight of the colour-jitter group.
        flip: Weight of the flip group.
        grayscale: Weight of the grayscale group.
        blur: Weight of the blur group.
        tanh: Squash predictions with tanh, as in the paper.
        target_scale: Divisor of the parameter differences.

    Example:
        >>> loss = AugSelfLoss(in_features=64)
        >>> out = loss(torch.randn(2, 8, 64), torch.randn(2, 8, 11))
        >>> sorted(out.parts)
        ['color', 'crop']
    """

    inputs = frozenset({"features", "params"})
    kind = "feature"

    def __init__(
        self,
        in_features: int = 512,
        hidden_dim: int = 512,
        param_dim: int = 11,
        crop: float = 1.0,
        color: float = 1.0,
        flip: float = 0.0,
        grayscale: float = 0.0,
        blur: float = 0.0,
        tanh: bool = True,
        target_scale: float = 4.0,
    ) -> None:
        super().__init__()
        weights = {"crop": crop, "flip": flip, "color": color, "grayscale": grayscale, "blur": blur}
        self.weights = {name: w for name, w in weights.items() if w > 0}
        if not self.weights:
            raise ConfigError("augself: every group weight is 0; enable at least one group")
        too_short = [n for n in self.weights if PARAM_GROUPS[n][1] > param_dim]
        if too_short:
            raise ConfigError(f"augself: param_dim {param_dim} has no columns for {too_short}")
        if target_scale <= 0:
            raise ConfigError(f"augself: target_scale must be > 0, got {target_scale}")
        self.in_features = in_features
        self.param_dim = param_dim
        self.tanh = tanh
        self.target_scale = target_scale
        self.predictors = nn.ModuleDict(
            {
                name: mlp(2 * in_features, hidden_dim, end - start, num_hidden=2)
                for name, (start, end) in PARAM_GROUPS.items()
                if name in self.weights
            }
        )

    def check_inputs(self, h_views: Tensor, params: Tensor) -> None:
        """Raise a :class:`~moeheads.errors.ConfigError` for inconsistent shapes."""
        if h_views.dim() != 3 or h_views.shape[-1] != self.in_features or h_views.shape[0] < 2:
            raise ShapeError(
                f"augself expects features [V >= 2, B, {self.in_features}], "
                f"got {list(h_views.shape)}"
            )
        if params.dim() != 3 or params.shape[:2] != h_views.shape[:2]:
            raise ShapeError(
                f"augself: params must be [{h_views.shape[0]}, {h_views.shape[1]}, P] to match "
                f"the features, got {list(params.shape)}"
            )
        if params.shape[-1] != self.param_dim:
            raise ShapeError(
                f"augself: param_dim is {self.param_dim} but params has {params.shape[-1]} "
                "values per view"
            )

    def forward(self, h_views: Tensor, params: Tensor) -> LossOutput:
        """The loss for backbone features ``h_views[V, B, d]`` and ``params[V, B, P]``.

        Returns:
            The weighted sum, with each group's unweighted MSE as a part.
        """
        self.check_inputs(h_views, params)
        first, second = ordered_pairs(h_views.shape[0], h_views.device)
        x = torch.cat([h_views[first], h_views[second]], dim=-1).flatten(0, 1)
        diff = ((params[first] - params[second]) / self.target_scale).flatten(0, 1).float()
        parts: dict[str, Tensor] = {}
        for name, predictor in self.predictors.items():
            start, end = PARAM_GROUPS[name]
            prediction = predictor(x).float()
            if self.tanh:
                prediction = torch.tanh(prediction)
            parts[name] = F.mse_loss(prediction, diff[:, start:end])
        loss = torch.stack([self.weights[n] * value for n, value in parts.items()]).sum()
        return LossOutput(loss, parts)

    def from_inputs(self, inputs: TaskInputs) -> LossOutput:
        """The loss from ``inputs.features`` and ``inputs.params``."""
        features = inputs.require("features", "augself")
        return self(features, inputs.require("params", "augself"))
