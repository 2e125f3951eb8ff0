"""Checking a backbone's model options before anything is built for real."""

from __future__ import annotations

from typing import Any

import torch

from moeheads.backbones.base import BACKBONES
from moeheads.backbones.timm_models import TimmOptions
from moeheads.backbones.torchvision_models import TorchvisionOptions
from moeheads.errors import ConfigError


def check_backbone_options(family: str, options: dict[str, Any]) -> None:
    """Check the model keyword arguments of a ``timm:``/``torchvision:`` backbone by building
    the model on the meta device (no memory, no download); other families: nothing to do.

    Raises:
        ConfigError: The model does not take one of the keywords (or rejects its value).
    """
    named = {"timm": TimmOptions, "torchvision": TorchvisionOptions}.get(family)
    if named is None or not set(options) - set(named.model_fields):
        return
    options = {**options, "pretrained": False} if family == "timm" else options
    options = {**options, "weights": None} if family == "torchvision" else options
    builder = BACKBONES.get(family).builder
    try:
        with torch.device("meta"):
            builder(**options)
    except ConfigError:
        raise
    except NotImplementedError:  # an operation without a meta kernel: build it for real
        builder(**options)
    except (ValueError, AssertionError, RuntimeError) as error:
        raise ConfigError(f"{family}:{options.get('model')}: {error}") from None
