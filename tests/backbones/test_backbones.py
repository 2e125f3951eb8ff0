import math
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from moeheads.backbones import BACKBONES, Backbone, create_backbone
from moeheads.errors import ConfigError
from tests.train.recipes import tiny_recipe


@pytest.mark.parametrize(
    ("spec", "options", "dim", "size"),
    [
        ("torchvision:resnet18", {}, 512, 64),
        ("torchvision:resnet18", {"small_images": True}, 512, 32),
        ("torchvision:resnet50", {}, 2048, 64),
        ("torchvision:mobilenet_v3_small", {}, 1024, 64),
        ("small_cnn", {"width": 8, "depth": 3}, 32, 32),
        ("timm:resnet18", {}, 512, 64),
    ],
)
def test_features_have_the_stated_dimension(spec: str, options: dict, dim: int, size: int):
    if spec.startswith("timm"):
        pytest.importorskip("timm")
    backbone = create_backbone(spec, **options).eval()
    assert backbone.feature_dim == dim
    assert backbone(torch.randn(2, 3, size, size)).shape == (2, dim)


def test_small_image_stem_has_no_maxpool() -> None:
    net = create_backbone("torchvision:resnet18", small_images=True).module
    assert isinstance(net.maxpool, nn.Identity) and net.conv1.kernel_size == (3, 3)
    # 32 px keeps a 4x4 map before pooling (stride 8) instead of 1x1
    trunk = nn.Sequential(*list(net.children())[:-2])
    assert trunk(torch.randn(1, 3, 32, 32)).shape[-1] == 4


def test_zero_init_residual_is_applied() -> None:
    net = create_backbone("torchvision:resnet18").module
    assert float(net.layer1[0].bn2.weight.detach().abs().sum()) == 0.0
    net = create_backbone("torchvision:resnet18", zero_init_residual=False).module
    assert float(net.layer1[0].bn2.weight.detach().abs().sum()) > 0.0


def test_user_module_with_and_without_dimension() -> None:
    module = nn.Sequential(nn.Conv2d(3, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert create_backbone(module).feature_dim == 6
    assert create_backbone(module, feature_dim=6).feature_dim == 6
    pooled = create_backbone(nn.Sequential(nn.Conv2d(3, 5, 3), nn.AdaptiveAvgPool2d(1)))
    assert pooled(torch.randn(2, 3, 8, 8)).shape == (2, 5)  # [B, d, 1, 1] is flattened
    backbone = Backbone(module, 6)
    assert create_backbone(backbone) is backbone


def test_errors() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'torchvison'"):
        create_backbone("torchvison:resnet18")
    with pytest.raises(ConfigError, match="did you mean resnet18"):
        create_backbone("torchvision:resnet81")
    with pytest.raises(ConfigError, match="unknown option 'wdth'"):
        create_backbone("small_cnn", wdth=3)
    with pytest.raises(ConfigError, match="feature_dim 512, not 256"):
        create_backbone("torchvision:resnet18", feature_dim=256)
    with pytest.raises(ConfigError, match="pass feature_dim"):
        create_backbone(nn.Linear(3, 4))


def test_timm_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail
    with pytest.raises(ConfigError, match=r"moeheads\[timm\]"):
        BACKBONES.create("timm", model="resnet18")


def test_model_keywords_reach_timm_and_torchvision_models() -> None:
    vit = create_backbone("timm:vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2,
                          drop_path_rate=0.1)
    assert vit.module.patch_embed.img_size == (32, 32) and len(vit.module.blocks) == 2
    assert vit.module.blocks[1].drop_path1.drop_prob == pytest.approx(0.1)
    assert vit(torch.randn(2, 3, 32, 32)).shape == (2, 192)
    tv = create_backbone("torchvision:vit_b_16", image_size=32)
    assert tv.feature_dim == 768 and tv.module.image_size == 32
    with pytest.raises(ConfigError, match="unexpected keyword argument 'img_size'"):
        create_backbone("timm:resnet18", img_size=32)


def test_recipe_backbone_keywords_are_checked_by_building_the_model(tmp_path: Path) -> None:
    from moeheads.recipe.io import load_recipe

    good = {"name": "timm:vit_tiny_patch16_224", "img_size": 96, "patch_size": 8,
            "drop_path_rate": 0.1}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, backbone=good)))
    assert load_recipe(path).backbone.options["img_size"] == 96
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, backbone={**good, "img_sise": 96})))
    with pytest.raises(ConfigError, match=r"backbone.*img_sise"):
        load_recipe(path)


@pytest.mark.parametrize("conv_init", ["torchvision", "pytorch"])
def test_conv_init_per_layer_std(conv_init: str) -> None:
    """``pytorch``: kaiming-uniform a=sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    std 1/sqrt(3 fan_in); ``torchvision``: kaiming-normal fan-out, std sqrt(2 / fan_out)."""
    torch.manual_seed(0)
    backbone = create_backbone("torchvision:resnet18", conv_init=conv_init)
    convs = [m for m in backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 20
    for conv in convs:
        w = conv.weight.detach()
        fan_in = w[0].numel()
        fan_out = w.shape[0] * w[0, 0].numel()
        if conv_init == "pytorch":
            expected = 1 / math.sqrt(3 * fan_in)
            assert float(w.abs().max()) <= 1 / math.sqrt(fan_in)
        else:
            expected = math.sqrt(2 / fan_out)
        assert float(w.std()) == pytest.approx(expected, rel=0.05)
    bn = backbone.module.layer1[0].bn2  # zero_init_residual survives the reset
    assert float(bn.weight.detach().abs().sum()) == 0.0
