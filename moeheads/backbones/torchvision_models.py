"""``torchvision:<model>``: any torchvision classification model, classifier removed."""

from __future__ import annotations

import difflib
from typing import Any, Literal

from torch import nn

from moeheads.backbones.base import (
    BACKBONES,
    Backbone,
    ModelOptions,
    build_model,
    infer_feature_dim,
)
from moeheads.errors import ConfigError


class TorchvisionOptions(ModelOptions):
    """Options of ``torchvision:<model>``; other keys go to the model (``image_size``...)."""

    zero_init_residual: bool = True
    small_images: bool = False
    weights: str | None = None
    conv_init: Literal["torchvision", "pytorch"] = "torchvision"


def _remove_classifier(model: nn.Module) -> nn.Module:
    """Replace the final classification layer of a torchvision model by ``Identity``."""
    for attribute in ("fc", "classifier", "head", "heads"):
        layer = getattr(model, attribute, None)
        if layer is None:
            continue
        if isinstance(layer, nn.Linear):
            setattr(model, attribute, nn.Identity())
            return model
        if isinstance(layer, nn.Sequential):
            for index in range(len(layer) - 1, -1, -1):
                if isinstance(layer[index], nn.Linear):
                    layer[index] = nn.Identity()
                    return model
    raise ConfigError(f"cannot find the classifier of {type(model).__name__} to remove")


@BACKBONES.register("torchvision", options=TorchvisionOptions)
def torchvision_backbone(
    model: str,
    zero_init_residual: bool = True,
    small_images: bool = False,
    weights: str | None = None,
    conv_init: Literal["torchvision", "pytorch"] = "torchvision",
    **model_kwargs: Any,
) -> Backbone:
    """Any torchvision classification model (``torchvision:<model>``), classifier removed.

    Args:
        model: torchvision model name, e.g. ``"resnet18"``, ``"resnet50"``, ``"vit_b_16"``.
        zero_init_residual: ResNets: zero-init the last BN of each residual block.
        small_images: ResNets: a 3x3 stride-1 stem without max-pool (CIFAR-style).
        weights: Pretrained weight name for ``torchvision.models.get_model`` (needs a download).
        conv_init: ``torchvision``: the constructor's initialisation (ResNets: kaiming-normal,
            fan-out); ``pytorch``: every convolution reset to PyTorch's default
            (kaiming-uniform with ``a = sqrt(5)``, about 2.5x smaller std), as STAR's
            authors do after building the ResNet. BatchNorm (``zero_init_residual``
            included) is left as built. Ignored with pretrained ``weights``.
        **model_kwargs: Keyword arguments of the model (``image_size=96`` for ``vit_b_16``).
    """
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if model not in known:
        close = difflib.get_close_matches(model, known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"unknown torchvision model {model!r}; {hint}(see torchvision.models.list_models())"
        )
    is_resnet = model.startswith(("resnet", "resnext", "wide_resnet"))
    kwargs: dict[str, Any] = {"weights": weights, **model_kwargs}
    if is_resnet:
        kwargs["zero_init_residual"] = zero_init_residual
    elif small_images:
        raise ConfigError("small_images applies only to torchvision ResNets")
    net = build_model("torchvision", torchvision.models.get_model, model,
                       {"name": model, **kwargs})
    if small_images:
        net.conv1 = nn.Conv2d(3, net.conv1.out_channels, 3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        net.maxpool = nn.Identity()
    if is_resnet:
        feature_dim = net.fc.in_features
        net.fc = nn.Identity()
    else:
        net = _remove_classifier(net)
        feature_dim = infer_feature_dim(net, image_size=int(model_kwargs.get("image_size", 224)))
    if conv_init == "pytorch" and weights is None:
        for layer in net.modules():
            if isinstance(layer, nn.Conv2d):
                layer.reset_parameters()
    return Backbone(net, feature_dim, name=f"torchvision:{model}")
