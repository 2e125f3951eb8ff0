"""One call for every kind of backbone: a registered name or a module."""

from __future__ import annotations

from typing import Any

from torch import nn

from moeheads.backbones.base import BACKBONES, Backbone, infer_feature_dim
from moeheads.errors import ConfigError


def create_backbone(
    spec: str | nn.Module, feature_dim: int | None = None, **options: Any
) -> Backbone:
    """A :class:`Backbone` from a name or a module.

    Args:
        spec: ``"torchvision:resnet18"``, ``"timm:resnet50"``, ``"small_cnn"``, or a module.
        feature_dim: For a module: its feature dimension (inferred by a dry run if omitted).
        **options: Options of the backbone family (e.g. ``small_images=True``).

    Example:
        >>> create_backbone("torchvision:resnet18").feature_dim
        512
        >>> create_backbone(nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1))).feature_dim
        8
    """
    if isinstance(spec, Backbone):
        return spec
    if isinstance(spec, nn.Module):
        if options:
            raise ConfigError(f"options {sorted(options)} apply only to named backbones")
        dim = feature_dim if feature_dim is not None else infer_feature_dim(spec)
        return Backbone(spec, dim, name=type(spec).__name__)
    family, _, model = spec.partition(":")
    if model:
        options = {"model": model, **options}
    backbone = BACKBONES.create(family, **options)
    if feature_dim is not None and feature_dim != backbone.feature_dim:
        raise ConfigError(
            f"backbone {spec!r} has feature_dim {backbone.feature_dim}, not {feature_dim}"
        )
    return backbone
