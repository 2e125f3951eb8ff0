"""``timm:<model>``: any timm model without its classifier (the ``timm`` extra)."""

from __future__ import annotations

import importlib
from typing import Any

from moeheads.backbones.base import BACKBONES, Backbone, ModelOptions, build_model
from moeheads.errors import ConfigError


class TimmOptions(ModelOptions):
    """Options of ``timm:<model>``; other keys go to ``timm.create_model`` (``img_size``...)."""

    pretrained: bool = False


def _import_timm() -> Any:
    try:
        return importlib.import_module("timm")
    except ModuleNotFoundError:
        raise ConfigError(
            "timm backbones need the timm extra: pip install 'moeheads[timm]'"
        ) from None


@BACKBONES.register("timm", options=TimmOptions)
def timm_backbone(model: str, pretrained: bool = False, **model_kwargs: Any) -> Backbone:
    """Any timm model (``timm:<model>``) built with ``num_classes=0`` (needs the timm extra).

    Args:
        model: timm model name, e.g. ``"resnet50"``, ``"vit_tiny_patch16_224"``.
        pretrained: Load timm's pretrained weights (needs a download).
        **model_kwargs: Keyword arguments of ``timm.create_model`` (``img_size=96``,
            ``patch_size=8``, ``drop_path_rate=0.1``...).
    """
    timm = _import_timm()
    try:
        net = build_model("timm", timm.create_model, model, {
            "model_name": model, "pretrained": pretrained, "num_classes": 0, **model_kwargs})
    except RuntimeError as error:
        raise ConfigError(f"timm: {error}") from None
    return Backbone(net, int(net.num_features), name=f"timm:{model}")
