"""``small_cnn``: a small convolutional backbone for CPU-scale recipes."""

from __future__ import annotations

from torch import nn

from moeheads.backbones.base import BACKBONES, Backbone
from moeheads.errors import ConfigError


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
