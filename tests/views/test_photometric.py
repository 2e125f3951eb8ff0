"""Batched photometric ops equal torchvision's functional ops applied image by image.

Tolerance: absolute 1e-5 on float32 images in [0, 1] (normalised outputs: 1e-4,
i.e. 1e-5 divided by the smallest std). The batched ops use the same formulas; the
only differences are float rounding (the blur is separable, torchvision's is 2-D).
"""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from moeheads.views import Photometric, ViewSampler
from moeheads.views.blur import gaussian_blur
from moeheads.views.color import adjust_brightness, adjust_contrast, adjust_saturation, grayscale
from moeheads.views.hsv import adjust_hue, hsv_to_rgb, rgb_to_hsv
from moeheads.views.layout import BLUR_SIGMA, GRAYSCALE, JITTER

ATOL = 1e-5
TV_JITTER = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)


def _images(n: int = 6, size: int = 20) -> torch.Tensor:
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
    images[0] = 128  # a gray image: hue undefined, saturation 0
    images[1, :, :5] = torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1, 1)
    return images.float() / 255


def _per_image(fn, images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return torch.stack([fn(img, float(f)) for img, f in zip(images, factors, strict=True)])


@pytest.mark.parametrize(
    ("ours", "theirs", "low", "high"),
    [
        (adjust_brightness, TF.adjust_brightness, 0.0, 2.0),
        (adjust_contrast, TF.adjust_contrast, 0.0, 2.0),
        (adjust_saturation, TF.adjust_saturation, 0.0, 2.0),
        (adjust_hue, TF.adjust_hue, -0.5, 0.5),
    ],
)
def test_jitter_ops_match_torchvision(ours, theirs, low: float, high: float) -> None:
    images = _images()
    factors = torch.empty(len(images)).uniform_(low, high)
    expected = _per_image(theirs, images, factors)
    torch.testing.assert_close(ours(images, factors), expected, atol=ATOL, rtol=0)


def test_hsv_round_trip() -> None:
    images = _images()
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(images)), images, atol=ATOL, rtol=0)


def test_grayscale_matches_torchvision() -> None:
    images = _images()
    expected = TF.rgb_to_grayscale(images, num_output_channels=1)
    torch.testing.assert_close(grayscale(images), expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kernel_size", [9, 23])
def test_blur_matches_torchvision(kernel_size: int) -> None:
    images = _images(size=32)
    sigma = torch.empty(len(images)).uniform_(0.1, 2.0)
    expected = torch.stack(
        [
            TF.gaussian_blur(img, [kernel_size] * 2, [float(s)] * 2)
            for img, s in zip(images, sigma, strict=True)
        ]
    )
    torch.testing.assert_close(
        gaussian_blur(images, sigma, kernel_size), expected, atol=ATOL, rtol=0
    )


def _reference(
    image: torch.Tensor, params: torch.Tensor, order: torch.Tensor, k: int, o
) -> torch.Tensor:
    """torchvision's functional ops on one float image, jitter in the sampled order."""
    x = image.float() / 255
    factors = params[JITTER].tolist()
    if factors != [1.0, 1.0, 1.0, 0.0]:
        for op in order.tolist():
            x = TV_JITTER[op](x, factors[op])
    if params[GRAYSCALE] > 0.5:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    if params[BLUR_SIGMA] > 0:
        x = TF.gaussian_blur(x, [k, k], [float(params[BLUR_SIGMA])] * 2)
    return TF.normalize(x, list(o.mean), list(o.std))


@pytest.mark.parametrize("jitter_p", [0.8, 1.0])
def test_full_chain_matches_torchvision_in_sampled_order(jitter_p: float) -> None:
    sampler = ViewSampler(size=24, jitter_p=jitter_p)
    num_views, batch = 2, 16
    g = torch.Generator().manual_seed(1)
    params, order = sampler.sample(num_views * batch, 24, 24, g)
    params, order = params.view(num_views, batch, -1), order.view(num_views, batch, 4)
    images = torch.randint(0, 256, (num_views, batch, 3, 24, 24), dtype=torch.uint8)
    photometric = Photometric.from_options(sampler.options)
    out = photometric(images, params, order)
    k = sampler.options.kernel_size
    expected = torch.stack(
        [
            torch.stack(
                [
                    _reference(images[v, b], params[v, b], order[v, b], k, sampler.options)
                    for b in range(batch)
                ]
            )
            for v in range(num_views)
        ]
    )
    assert out.shape == (num_views, batch, 3, 24, 24) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=ATOL / min(sampler.options.std), rtol=0)


def test_float_input_is_not_modified() -> None:
    images = _images(4)
    copy = images.clone()
    params = torch.tensor([[0, 0, 1, 1, 0, 1.2, 0.8, 1.1, 0.1, 1, 1.0]]).repeat(4, 1)
    params[:2, 9] = 0  # some rows take the in-place (partial) path
    Photometric()(images, params, torch.arange(4).repeat(4, 1))
    torch.testing.assert_close(images, copy, atol=0, rtol=0)


@pytest.mark.parametrize("jitter", ["torchvision", "kornia"])
def test_masked_rows_equal_indexed_rows_without_host_reads(jitter: str) -> None:
    from tests.host_reads import count_host_reads

    sampler = ViewSampler(size=24, jitter_p=0.8, blur_p=0.5, grayscale_p=0.3, jitter=jitter)
    params, order = sampler.sample(32, 24, 24, torch.Generator().manual_seed(2))
    images = torch.randint(0, 256, (32, 3, 24, 24), dtype=torch.uint8)
    indexed = Photometric.from_options(sampler.options)
    masked = Photometric.from_options(sampler.options)
    masked.masked = True
    expected = indexed(images, params, order)
    with count_host_reads() as reads:
        out = masked(images, params, order)
    assert not reads, dict(reads)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    with count_host_reads() as reads:
        indexed(images, params, order)
    assert reads  # the counter sees the indexed path's reads
