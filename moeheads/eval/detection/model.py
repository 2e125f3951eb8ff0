"""Faster R-CNN R50-C4 on a pretrained ResNet, from torchvision's detection parts.

The C4 split of the self-supervised detection literature (MoCo's detectron2 configs):
stem + res2-res4 form the stride-16 trunk, the RPN proposes on that one feature map,
RoIAlign pools 14x14 boxes and res5 (followed by an extra BatchNorm) with average
pooling is the box head, before a 21-way classifier and box regressor.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from moeheads.errors import ConfigError

#: The four stages of :func:`resnet_stages` that ``freeze_at`` counts.
STAGE_NAMES = ("stem", "res2", "res3", "res4")


def resnet_stages(module: nn.Module, name: str = "backbone") -> tuple[nn.Module, list[nn.Module]]:
    """The stem and the four residual stages of a torchvision or timm ResNet.

    Raises:
        ConfigError: ``module`` is not a ResNet (no ``conv1``, ``bn1``, ``layer1`` ...
            ``layer4``).
    """
    needed = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
    missing = [a for a in needed if not isinstance(getattr(module, a, None), nn.Module)]
    if missing:
        raise ConfigError(
            f"the detection protocol (Faster R-CNN C4) needs a ResNet backbone with a stem "
            f"and stages layer1-layer4 (torchvision:resnet* or timm:resnet*); {name} "
            f"({type(module).__name__}) has no {', '.join(missing)}"
        )
    act = getattr(module, "relu", None) or getattr(module, "act1", None) or nn.ReLU()
    pool = getattr(module, "maxpool", None) or nn.Identity()
    stem = nn.Sequential(module.conv1, module.bn1, act, pool)
    return stem, [module.layer1, module.layer2, module.layer3, module.layer4]


def stage_channels(stage: nn.Module) -> int:
    """Output channels of a ResNet stage (the last BatchNorm of its last block)."""
    last = stage[-1] if isinstance(stage, nn.Sequential) else stage
    for name in ("bn3", "bn2"):
        norm = getattr(last, name, None)
        if isinstance(norm, nn.BatchNorm2d):
            return norm.num_features
    raise ConfigError(f"cannot find the output channels of {type(last).__name__}")


class C4Trunk(nn.Sequential):
    """Stem and res2-res4: images to one stride-16 feature map (``out_channels`` wide)."""

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module]) -> None:
        super().__init__(stem, *stages)
        self.out_channels = stage_channels(stages[-1])


class Res5Head(nn.Module):
    """res5, an extra BatchNorm and global average pooling: RoI features to vectors."""

    def __init__(self, res5: nn.Module) -> None:
        super().__init__()
        self.res5 = res5
        self.out_channels = stage_channels(res5)
        self.norm = nn.BatchNorm2d(self.out_channels)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, rois: Tensor) -> Tensor:
        """``[R, C4, 14, 14]`` pooled boxes to ``[R, C5]`` vectors."""
        return self.pool(self.norm(self.res5(rois))).flatten(1)


def freeze(trunk: C4Trunk, freeze_at: int) -> None:
    """Freeze the first ``freeze_at`` stages (stem, res2, res3, res4): no gradients and
    BatchNorm with frozen statistics and affine parameters."""
    if not 0 <= freeze_at <= len(STAGE_NAMES):
        raise ConfigError(f"freeze_at must be 0-4 (0: train all), not {freeze_at}")
    for index in range(freeze_at):
        stage = trunk[index]
        for param in stage.parameters():
            param.requires_grad_(False)
        trunk[index] = frozen_batchnorm(stage)


def frozen_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm2d replaced by a FrozenBatchNorm2d of its values."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(frozen, name).copy_(getattr(module, name).detach())
        return frozen
    for name, child in module.named_children():
        setattr(module, name, frozen_batchnorm(child))
    return module
