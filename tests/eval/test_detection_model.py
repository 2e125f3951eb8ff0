"""The C4 Faster R-CNN: built from torchvision parts on a ResNet's weights, freeze_at."""

import pytest
import torch
from torch import nn

from moeheads.backbones import create_backbone
from moeheads.errors import ConfigError
from moeheads.eval.detection.detector import build_detector

TINY = {"train_sizes": (64,), "test_size": 64, "anchor_sizes": (16, 32), "roi_size": 4,
        "rois_per_image": 16}


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    return create_backbone("torchvision:resnet18").module


def test_trunk_and_box_head_hold_the_backbones_weights(resnet: nn.Module) -> None:
    from torchvision.models.detection import FasterRCNN
    from torchvision.ops import MultiScaleRoIAlign

    model = build_detector(resnet, 20, **TINY)
    assert isinstance(model, FasterRCNN)
    assert isinstance(model.roi_heads.box_roi_pool, MultiScaleRoIAlign)
    trunk, head = model.backbone.state_dict(), model.roi_heads.box_head.state_dict()
    source = resnet.state_dict()
    names = {"0.0": "conv1", "0.1": "bn1", "1": "layer1", "2": "layer2", "3": "layer3"}
    for key, value in trunk.items():
        prefix = next(p for p in names if key.startswith(p + "."))
        assert torch.equal(value, source[names[prefix] + key[len(prefix):]]), key
    assert len(trunk) == sum(1 for k in source if k.split(".")[0] in names.values())
    res5 = {k.removeprefix("res5."): v for k, v in head.items() if k.startswith("res5.")}
    assert res5.keys() == {k.removeprefix("layer4.") for k in source if k.startswith("layer4.")}
    assert all(torch.equal(v, source["layer4." + k]) for k, v in res5.items())
    assert isinstance(model.roi_heads.box_head.norm, nn.BatchNorm2d)  # the extra norm
    assert model.roi_heads.box_predictor.cls_score.out_features == 21
    model.backbone[1][0].conv1.weight.data.zero_()  # a copy: the backbone is unchanged
    assert resnet.layer1[0].conv1.weight.abs().sum() > 0


def test_c4_shapes(resnet: nn.Module) -> None:
    model = build_detector(resnet, 20, **TINY).eval()
    assert model.backbone(torch.zeros(1, 3, 64, 96)).shape == (1, 256, 4, 6)  # stride 16
    assert model.roi_heads.box_head(torch.zeros(3, 256, 4, 4)).shape == (3, 512)
    with torch.no_grad():
        out = model([torch.rand(3, 64, 80)])
    assert out[0]["boxes"].shape[1] == 4
    assert (out[0]["boxes"][:, 2] <= 80).all()  # in the original image's pixels


@pytest.mark.parametrize("freeze_at", [0, 2, 4])
def test_freeze_at_freezes_stages_and_their_batchnorm(resnet: nn.Module, freeze_at: int) -> None:
    from torchvision.ops.misc import FrozenBatchNorm2d

    trunk = build_detector(resnet, 20, freeze_at=freeze_at, **TINY).backbone
    for index, stage in enumerate(trunk):
        frozen = index < freeze_at
        assert all(p.requires_grad != frozen for p in stage.parameters()), index
        norms = [m for m in stage.modules() if isinstance(m, nn.BatchNorm2d | FrozenBatchNorm2d)]
        assert norms and all(isinstance(m, FrozenBatchNorm2d) == frozen for m in norms)
    if freeze_at:  # frozen BatchNorm keeps the backbone's statistics
        assert torch.equal(trunk[0][1].running_var, resnet.bn1.running_var)


def test_freeze_at_out_of_range(resnet: nn.Module) -> None:
    with pytest.raises(ConfigError, match="freeze_at must be 0-4"):
        build_detector(resnet, 20, freeze_at=5, **TINY)


def test_non_resnet_backbones_are_refused() -> None:
    from torchvision.models import VisionTransformer

    vit = VisionTransformer(32, 16, num_layers=1, num_heads=1, hidden_dim=8, mlp_dim=8)
    for module in (create_backbone("small_cnn").module, vit):
        with pytest.raises(ConfigError, match=r"needs a ResNet backbone .*no conv1, bn1, layer1"):
            build_detector(module, 20, **TINY)
