"""AugSelf-style differences between the parameters of two views."""

from __future__ import annotations

from torch import Tensor

from moeheads.errors import ShapeError
from moeheads.views.layout import BINARY_PARAMS, NUM_PARAMS


def param_difference(params_a: Tensor, params_b: Tensor) -> Tensor:
    """How view b differs from view a, per parameter ``[..., 11]``.

    - crop (top, left, height, width, relative to the image): ``b - a``;
    - flip and grayscale: ``xor`` (1 where exactly one view has it);
    - brightness, contrast, saturation, hue and blur sigma: ``b - a``.

    Example:
        >>> import torch
        >>> a, b = torch.zeros(11), torch.ones(11)
        >>> param_difference(a, b)[4].item()
        1.0
    """
    if params_a.shape != params_b.shape or params_a.shape[-1] != NUM_PARAMS:
        raise ShapeError(
            f"param_difference needs two [..., {NUM_PARAMS}] tensors of the same shape, "
            f"got {list(params_a.shape)} and {list(params_b.shape)}"
        )
    diff = params_b - params_a
    binary = list(BINARY_PARAMS)
    diff[..., binary] = diff[..., binary].abs()
    return diff
