"""The geometric part: crops follow the recorded parameters and can be re-applied."""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

from moeheads.views import ViewSampler, ViewsDataset, apply_geometric, center_view, to_image_tensor
from moeheads.views.geometric import crop_box


def _image(height: int = 50, width: int = 70) -> torch.Tensor:
    return torch.randint(0, 256, (3, height, width), dtype=torch.uint8)


def test_recorded_parameters_reproduce_the_views() -> None:
    images = [(_image(), 3), (_image(64, 40), 1)]
    ds = ViewsDataset(images, ViewSampler(size=32), num_views=3, seed=5)
    for index, (image, _) in enumerate(images):
        sample = ds[index]
        again = apply_geometric(image, sample.params, 32)
        assert torch.equal(again, sample.views)


def test_crop_box_is_exact_and_matches_torchvision() -> None:
    image = _image(57, 83)
    g = torch.Generator().manual_seed(0)
    params, _ = ViewSampler(size=24).sample(20, 57, 83, g)
    for p in params:
        top, left, h, w = crop_box(p.tolist(), 57, 83)
        assert top >= 0 and left >= 0 and top + h <= 57 and left + w <= 83
        expected = TF.resized_crop(image, top, left, h, w, [24, 24], antialias=True)
        if p[4] > 0.5:
            expected = TF.horizontal_flip(expected)
        assert torch.equal(apply_geometric(image, p, 24), expected)


def test_pil_and_grayscale_inputs() -> None:
    array = _image(30, 20)
    pil = Image.fromarray(array.permute(1, 2, 0).numpy())
    assert torch.equal(to_image_tensor(pil), array)
    gray = to_image_tensor(array[:1])
    assert gray.shape == (3, 30, 20) and torch.equal(gray[2], array[0])
    params = torch.tensor([0.1, 0.2, 0.5, 0.6, 1.0, 1, 1, 1, 0, 0, 0])
    assert torch.equal(
        apply_geometric(gray, params, 16), apply_geometric(gray.contiguous(), params, 16)
    )


def test_center_view() -> None:
    original = center_view(_image(40, 80), 32)
    assert original.shape == (3, 32, 32) and original.dtype == torch.uint8
