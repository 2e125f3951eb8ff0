"""The backbone contract: a module plus its feature dimension, and the family registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from moeheads.errors import ConfigError
from moeheads.registry import Registry


class Backbone(nn.Module):
    """A feature extractor with a known output dimension.

    Args:
        module: Maps images ``[B, 3, H, W]`` to features ``[B, d]`` (or ``[B, d, 1, 1]``,
            which is flattened).
        feature_dim: The feature dimension d.
        name: A name for logs and exports (``"torchvision:resnet18"``).
    """

    def __init__(self, module: nn.Module, feature_dim: int, name: str = "custom") -> None:
        super().__init__()
        self.module = module
        self.feature_dim = feature_dim
        self.name = name

    def forward(self, images: Tensor) -> Tensor:
        """Features ``[B, feature_dim]`` of ``images``."""
        return self.module(images).flatten(1)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, feature_dim={self.feature_dim}"


BACKBONES: Registry[Backbone] = Registry("backbone")
"""Registry of backbone families; ``create_backbone("family:model")`` picks one."""


def infer_feature_dim(module: nn.Module, image_size: int = 64) -> int:
    """Feature dimension of ``module`` from one dry run on a ``[2, 3, s, s]`` batch."""
    was_training = module.training
    module.eval()
    try:
        param = next(module.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            out = module(torch.zeros(2, 3, image_size, image_size, device=device))
    except Exception as error:
        raise ConfigError(
            f"could not infer the feature dimension of {type(module).__name__} with a "
            f"[2, 3, {image_size}, {image_size}] dry run ({error}); pass feature_dim"
        ) from error
    finally:
        module.train(was_training)
    return int(out.flatten(1).shape[1])


class ModelOptions(BaseModel):
    """Options of a model family: the named ones, plus any keyword of the model itself."""

    model_config = ConfigDict(extra="allow")

    model: str


def build_model(family: str, build: Callable[..., nn.Module], model: str,
                 kwargs: dict[str, Any]) -> nn.Module:
    """``build(**kwargs)``, with a keyword the model does not take as a :class:`ConfigError`."""
    try:
        return build(**kwargs)
    except TypeError as error:
        raise ConfigError(f"{family}:{model}: {error} (check the backbone's options)") from None
