"""ViewSampler: options, ranges, seeding."""

from __future__ import annotations

import pytest
import torch

from moeheads.errors import ConfigError
from moeheads.views import ViewOptions, ViewSampler
from moeheads.views.layout import BLUR_SIGMA, CROP, FLIP, GRAYSCALE, JITTER


def test_defaults_are_stars() -> None:
    o = ViewOptions()
    assert (o.scale, o.flip_p, o.jitter_p, o.grayscale_p, o.blur_p) == (
        (0.2, 1.0),
        0.5,
        0.8,
        0.2,
        0.5,
    )
    assert (o.brightness, o.contrast, o.saturation, o.hue, o.blur_sigma) == (
        0.4,
        0.4,
        0.4,
        0.1,
        (0.1, 2.0),
    )
    assert ViewOptions(size=96).kernel_size == 9
    assert ViewOptions(size=224).kernel_size == 23


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"flip_p": 1.5}, "flip_p"),
        ({"scale": (0.5, 0.2)}, "scale"),
        ({"blur_kernel_size": 8}, "blur_kernel_size"),
        ({"size": 16, "blur_kernel_size": 33}, "blur_kernel_size"),
        ({"hue": 0.7}, "hue"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_options_name_the_field(options: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        ViewSampler(**options)


def test_parameter_ranges() -> None:
    params, order = ViewSampler().sample(4000, 96, 96, torch.Generator().manual_seed(0))
    crop = params[:, CROP]
    assert (
        crop.min() >= 0
        and (crop[:, 0] + crop[:, 2]).max() <= 1
        and (crop[:, 1] + crop[:, 3]).max() <= 1
    )
    area = crop[:, 2] * crop[:, 3]
    assert area.min() > 0.19 and area.max() <= 1.0
    assert set(params[:, FLIP].unique().tolist()) == {0.0, 1.0}
    jitter = params[:, JITTER]
    neutral = (jitter == torch.tensor([1.0, 1.0, 1.0, 0.0])).all(-1)
    assert abs(neutral.float().mean().item() - 0.2) < 0.03
    assert (
        jitter[:, :3].min() >= 0.6
        and jitter[:, :3].max() <= 1.4
        and jitter[:, 3].abs().max() <= 0.1
    )
    assert abs(params[:, GRAYSCALE].mean().item() - 0.2) < 0.03
    sigma = params[:, BLUR_SIGMA]
    assert abs((sigma > 0).float().mean().item() - 0.5) < 0.03
    assert sigma[sigma > 0].min() >= 0.1 and sigma.max() <= 2.0
    assert (order.sort(-1).values == torch.arange(4)).all()
    assert len({tuple(o) for o in order.tolist()}) == 24


def test_seeded_generator_repeats() -> None:
    sampler = ViewSampler()
    a = sampler.sample(3, 50, 60, torch.Generator().manual_seed(7))
    b = sampler.sample(3, 50, 60, torch.Generator().manual_seed(7))
    c = sampler.sample(3, 50, 60, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
