"""ParamStandardizer: statistics come from the sampler itself."""

from __future__ import annotations

import pytest
import torch

from moeheads.views import ParamStandardizer, ViewSampler


@pytest.mark.parametrize(
    "options", [{}, {"size": 224, "scale": (0.08, 1.0), "jitter_p": 0.5, "blur_p": 0.1}]
)
def test_standardised_parameters_have_zero_mean_unit_std(options: dict) -> None:
    sampler = ViewSampler(**options)
    standardizer = ParamStandardizer.from_sampler(sampler, num_samples=5000, seed=0)
    fresh, _ = sampler.sample(20000, sampler.size, sampler.size, torch.Generator().manual_seed(99))
    z = standardizer(fresh)
    assert z.mean(0).abs().max() < 0.05
    assert (z.std(0) - 1).abs().max() < 0.05
    torch.testing.assert_close(standardizer.inverse(z), fresh, atol=1e-5, rtol=1e-5)


def test_constant_dimension_and_state_dict() -> None:
    sampler = ViewSampler(flip_p=0.0, grayscale_p=1.0)
    standardizer = ParamStandardizer.from_sampler(sampler, num_samples=100)
    assert standardizer.std[4] == 1 and standardizer.std[9] == 1
    assert set(standardizer.state_dict()) == {"mean", "std"}
    assert torch.isfinite(standardizer(torch.zeros(3, 11))).all()
