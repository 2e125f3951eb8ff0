"""Backbones: any image model that maps ``[B, 3, H, W]`` images to ``[B, d]`` features.

One contract, :class:`Backbone` (a module plus its feature dimension ``d``),
built by :func:`create_backbone` from:

- ``"torchvision:<name>"``: any torchvision classification model with its classifier
  removed (ResNet options: ``zero_init_residual``, ``small_images`` for a 3x3 stem
  without max-pool);
- ``"timm:<name>"``: ``timm.create_model(name, num_classes=0)`` (``pip install
  'moeheads[timm]'``);
- ``"small_cnn"``: a small CNN for CPU-scale recipes;
- an ``nn.Module`` passed directly, with its feature dimension (found by a dry run
  when not given).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Literal

import torch
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


@BACKBONES.register("torchvision")
def torchvision_backbone(
    model: str,
    zero_init_residual: bool = True,
    small_images: bool = False,
    weights: str | None = None,
    conv_init: Literal["torchvision", "pytorch"] = "torchvision",
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
    kwargs: dict[str, Any] = {"weights": weights}
    if is_resnet:
        kwargs["zero_init_residual"] = zero_init_residual
    elif small_images:
        raise ConfigError("small_images applies only to torchvision ResNets")
    net = torchvision.models.get_model(model, **kwargs)
    if small_images:
        net.conv1 = nn.Conv2d(3, net.conv1.out_channels, 3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        net.maxpool = nn.Identity()
    if is_resnet:
        feature_dim = net.fc.in_features
        net.fc = nn.Identity()
    else:
        net = _remove_classifier(net)
        feature_dim = infer_feature_dim(net, image_size=224)
    if conv_init == "pytorch" and weights is None:
        for layer in net.modules():
            if isinstance(layer, nn.Conv2d):
                layer.reset_parameters()
    return Backbone(net, feature_dim, name=f"torchvision:{model}")


@BACKBONES.register("timm")
def timm_backbone(model: str, pretrained: bool = False) -> Backbone:
    """Any timm model (``timm:<model>``) built with ``num_classes=0`` (needs the timm extra).

    Args:
        model: timm model name, e.g. ``"resnet50"``.
        pretrained: Load timm's pretrained weights (needs a download).
    """
    try:
        timm = importlib.import_module("timm")
    except ModuleNotFoundError:
        raise ConfigError(
            "timm backbones need the timm extra: pip install 'moeheads[timm]'"
        ) from None
    try:
        net = timm.create_model(model, pretrained=pretrained, num_classes=0)
    except RuntimeError as error:
        raise ConfigError(f"timm: {error}") from None
    return Backbone(net, int(net.num_features), name=f"timm:{model}")


@BACKBONES.register("small_cnn")
def small_cnn(width: int = 32, depth: int = 4, in_channels: int = 3) -> Backbone:
    """A small CNN for CPU-scale recipes: ``depth`` conv-BN-ReLU stages, global pooling.

    Stage i has ``width * 2**i`` channels and halves the resolution (except the
    first); the feature dimension is ``width * 2**(depth-1)``.

    Args:
        width: Channels of the first stage.
        depth: Number of stages (>= 1).
        in_channels: Image channels.
    """
    if depth < 1 or width < 1:
        raise ConfigError(f"small_cnn needs depth >= 1 and width >= 1, got {depth}, {width}")
    layers: list[nn.Module] = []
    channels = in_channels
    for stage in range(depth):
        out = width * 2**stage
        stride = 1 if stage == 0 else 2
        layers += [
            nn.Conv2d(channels, out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
        ]
        channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return Backbone(nn.Sequential(*layers), channels, name="small_cnn")


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
