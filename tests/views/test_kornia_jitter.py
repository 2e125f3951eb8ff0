"""Colour jitter with kornia 0.4.1's semantics (STAR's authors' views).

Expected values are derived by hand in the comments; the batched path is checked
against a plain per-image reference, and the op order is one per view group.
"""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from moeheads.views import Photometric, ViewOptions, ViewSampler
from moeheads.views.kornia_jitter import (
    kornia_brightness,
    kornia_contrast,
    kornia_hue,
    kornia_saturation,
)
from moeheads.views.layout import BLUR_SIGMA, GRAYSCALE, JITTER

ATOL = 1e-5


def _pixel(*rgb: float) -> torch.Tensor:
    return torch.tensor(rgb).view(1, 3, 1, 1)


def _f(value: float) -> torch.Tensor:
    return torch.tensor([value])


def test_brightness_is_additive_and_clamped() -> None:
    # x + (f - 1): (0.5, 0.25, 0.0) + 0.2 = (0.7, 0.45, 0.2); 0.9 + 0.4 clamps to 1
    out = kornia_brightness(_pixel(0.5, 0.25, 0.0), _f(1.2))
    torch.testing.assert_close(out, _pixel(0.7, 0.45, 0.2), atol=ATOL, rtol=0)
    out = kornia_brightness(_pixel(0.9, 0.1, 0.5), _f(1.4))
    torch.testing.assert_close(out, _pixel(1.0, 0.5, 0.9), atol=ATOL, rtol=0)
    # f = 0.6 subtracts 0.4: 0.3 -> 0 (clamped)
    out = kornia_brightness(_pixel(0.3, 0.6, 1.0), _f(0.6))
    torch.testing.assert_close(out, _pixel(0.0, 0.2, 0.6), atol=ATOL, rtol=0)


def test_contrast_multiplies_without_the_mean() -> None:
    # x * f: (0.5, 0.25, 0.0) * 1.5 = (0.75, 0.375, 0); 0.8 * 1.5 clamps to 1
    out = kornia_contrast(_pixel(0.5, 0.25, 0.0), _f(1.5))
    torch.testing.assert_close(out, _pixel(0.75, 0.375, 0.0), atol=ATOL, rtol=0)
    out = kornia_contrast(_pixel(0.8, 0.4, 0.2), _f(1.5))
    torch.testing.assert_close(out, _pixel(1.0, 0.6, 0.3), atol=ATOL, rtol=0)
    # torchvision's contrast would blend with the mean grey instead: not equal
    assert not torch.allclose(out, TF.adjust_contrast(_pixel(0.8, 0.4, 0.2)[0], 1.5)[None])


def test_saturation_scales_s_in_hsv() -> None:
    # (0.5, 0.25, 0): V = 0.5, S = 1, H = 1/12 (red sector). S * 0.5 = 0.5 gives
    # min = V (1 - S) = 0.25 and, in the red sector, g = min + (V - min) * 6H = 0.375.
    out = kornia_saturation(_pixel(0.5, 0.25, 0.0), _f(0.5))
    torch.testing.assert_close(out, _pixel(0.5, 0.375, 0.25), atol=ATOL, rtol=0)
    # S = (0.4 - 0.2) / 0.4 = 0.5, * 3 clamps to 1: min becomes 0; H = 1/3 (green), so
    # r = b stay at the minimum: (0, 0.4, 0)
    out = kornia_saturation(_pixel(0.2, 0.4, 0.2), _f(3.0))
    torch.testing.assert_close(out, _pixel(0.0, 0.4, 0.0), atol=ATOL, rtol=0)
    # torchvision blends with the luma instead: a different colour
    tv = TF.adjust_saturation(_pixel(0.5, 0.25, 0.0)[0], 0.5)[None]
    assert not torch.allclose(tv, _pixel(0.5, 0.375, 0.25), atol=1e-3)


def test_hue_rotates_h() -> None:
    # H = 1/12 + 1/12 = 1/6: red and green both at V, blue at the minimum
    out = kornia_hue(_pixel(0.5, 0.25, 0.0), _f(1 / 12))
    torch.testing.assert_close(out, _pixel(0.5, 0.5, 0.0), atol=ATOL, rtol=0)
    # a negative shift wraps: H = 1/12 - 1/6 = -1/12 = 11/12 (blue rising in the red sector)
    out = kornia_hue(_pixel(0.5, 0.25, 0.0), _f(-1 / 6))
    torch.testing.assert_close(out, _pixel(0.5, 0.0, 0.25), atol=ATOL, rtol=0)


OPS = (kornia_brightness, kornia_contrast, kornia_saturation, kornia_hue)


def _reference(image: torch.Tensor, params: torch.Tensor, order: list[int], k: int,
               o: ViewOptions) -> torch.Tensor:
    """One image, op by op, as the authors' pipeline applies it."""
    x = (image.float() / 255)[None]
    factors = params[JITTER].tolist()
    if factors != [1.0, 1.0, 1.0, 0.0]:
        for op in order:
            x = OPS[op](x, torch.tensor([factors[op]]))
    x = x[0]
    if params[GRAYSCALE] > 0.5:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    if params[BLUR_SIGMA] > 0:
        x = TF.gaussian_blur(x, [k, k], [float(params[BLUR_SIGMA])] * 2)
    return TF.normalize(x, list(o.mean), list(o.std))


@pytest.mark.parametrize("chunk_size", [None, 5])
def test_batched_path_equals_per_image_reference_with_one_order_per_group(
    chunk_size: int | None,
) -> None:
    sampler = ViewSampler(size=16, jitter="kornia", jitter_p=1.0)
    views, batch = 2, 12
    g = torch.Generator().manual_seed(3)
    params, order = sampler.sample(views * batch, 16, 16, g)
    params, order = params.view(views, batch, -1), order.view(views, batch, 4)
    assert len({tuple(o) for o in order[0].tolist()}) > 1  # the images drew different orders
    images = torch.randint(0, 256, (views, batch, 3, 16, 16), dtype=torch.uint8, generator=g)
    photometric = Photometric.from_options(sampler.options, chunk_size=chunk_size)
    assert photometric.jitter_semantics == "kornia"
    out = photometric(images, params, order)
    k = sampler.options.kernel_size
    expected = torch.stack([
        torch.stack([
            # every image of view group v uses the order drawn for the group's first image
            _reference(images[v, b], params[v, b], order[v, 0].tolist(), k, sampler.options)
            for b in range(batch)
        ])
        for v in range(views)
    ])
    torch.testing.assert_close(out, expected, atol=ATOL / min(sampler.options.std), rtol=0)


def test_torchvision_semantics_keep_the_per_image_order() -> None:
    options = ViewOptions(size=16, jitter_p=1.0)
    assert options.jitter == "torchvision"
    sampler = ViewSampler(options)
    params, order = sampler.sample(8, 16, 16, torch.Generator().manual_seed(0))
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    tv = Photometric.from_options(options)(images, params, order)
    per_row = Photometric.from_options(options)(images[3:4], params[3:4], order[3:4])
    torch.testing.assert_close(tv[3:4], per_row, atol=0, rtol=0)
    kornia = Photometric.from_options(ViewOptions(size=16, jitter="kornia"))(images, params, order)
    assert not torch.allclose(tv, kornia, atol=1e-3)
