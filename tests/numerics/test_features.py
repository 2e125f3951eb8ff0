"""Frozen-feature extraction, preprocessing and the on-disk cache."""

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from moeheads.errors import DataError
from moeheads.numerics.features import EvalTransform, extract_features, normalize_batch


def _backbone() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1))


def _dataset(n: int = 10) -> list:
    g = torch.Generator().manual_seed(0)
    items = [(torch.randint(0, 256, (3, 20, 28), dtype=torch.uint8, generator=g), i % 3)
             for i in range(n)]
    items[0] = (Image.new("RGB", (28, 20), (255, 0, 0)), 0)
    return items


def test_transform_resizes_and_center_crops() -> None:
    transform = EvalTransform(16)
    assert transform(torch.zeros(3, 20, 40, dtype=torch.uint8)).shape == (3, 16, 16)
    assert transform(torch.zeros(1, 40, 20, dtype=torch.uint8)).shape == (3, 16, 16)
    assert transform(Image.new("L", (30, 30))).shape == (3, 16, 16)
    with pytest.raises(DataError):
        transform(torch.zeros(4, 8, 8))


def test_features_match_a_manual_forward_pass() -> None:
    backbone, data = _backbone(), _dataset()
    backbone.train()
    result = extract_features(backbone, data, batch_size=4, image_size=16)
    assert result.features.shape == (10, 4) and result.features.dtype == torch.float32
    assert result.labels.tolist() == [i % 3 for i in range(10)]
    assert result.images_per_second is not None and result.images_per_second > 0
    assert backbone.training  # mode restored
    transform = EvalTransform(16)
    batch = normalize_batch(torch.stack([transform(img) for img, _ in data]),
                            (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    with torch.no_grad():
        expected = backbone.eval()(batch).flatten(1)
    torch.testing.assert_close(result.features, expected)


def test_cache_hit_and_key(tmp_path: Path) -> None:
    backbone, data = _backbone(), _dataset()
    first = extract_features(backbone, data, image_size=16, cache_dir=tmp_path, cache_key="toy")
    cached = extract_features(backbone, data, image_size=16, cache_dir=tmp_path, cache_key="toy")
    assert cached.images_per_second is None
    torch.testing.assert_close(cached.features, first.features)
    assert torch.equal(cached.labels, first.labels)
    with torch.no_grad():
        backbone[0].weight.add_(1.0)
    changed = extract_features(backbone, data, image_size=16, cache_dir=tmp_path, cache_key="toy")
    assert changed.images_per_second is not None and len(list(tmp_path.iterdir())) == 2


def test_empty_dataset() -> None:
    with pytest.raises(DataError, match="empty"):
        extract_features(_backbone(), [])
