"""NT-Xent, VICReg and Barlow Twins equal lightly's reference implementations."""

import pytest
import torch

from moeheads.losses import BarlowTwinsLoss, NTXentLoss, VICRegLoss

lightly_loss = pytest.importorskip("lightly.loss", reason="the dev extra installs lightly")
LightlyBarlow = lightly_loss.BarlowTwinsLoss
LightlyNTXent = lightly_loss.NTXentLoss
LightlyVICReg = lightly_loss.VICRegLoss

CASES = [(2, 4), (16, 32), (64, 128)]


def _pair(batch: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    z1 = torch.randn(batch, dim, dtype=torch.float64).float().requires_grad_()
    z2 = (z1.detach() + 0.5 * torch.randn(batch, dim)).requires_grad_()
    return z1, z2


def _assert_same(ours, theirs, z1: torch.Tensor, z2: torch.Tensor) -> None:
    ours_loss = ours(z1, z2).loss
    grads = torch.autograd.grad(ours_loss, (z1, z2))
    theirs_loss = theirs(z1, z2)
    ref_grads = torch.autograd.grad(theirs_loss, (z1, z2))
    torch.testing.assert_close(ours_loss, theirs_loss, atol=1e-5, rtol=1e-5)
    for grad, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("batch", "dim"), CASES)
@pytest.mark.parametrize("temperature", [0.1, 0.2, 0.5])
def test_ntxent_equals_lightly(batch: int, dim: int, temperature: float) -> None:
    z1, z2 = _pair(batch, dim)
    _assert_same(NTXentLoss(temperature), LightlyNTXent(temperature), z1, z2)


@pytest.mark.parametrize(("batch", "dim"), CASES)
def test_vicreg_equals_lightly(batch: int, dim: int) -> None:
    z1, z2 = _pair(batch, dim)
    _assert_same(VICRegLoss(), LightlyVICReg(), z1, z2)


@pytest.mark.parametrize(("batch", "dim"), CASES)
def test_vicreg_equals_lightly_with_other_weights(batch: int, dim: int) -> None:
    z1, z2 = _pair(batch, dim)
    ours = VICRegLoss(invariance_weight=5.0, variance_weight=2.0, covariance_weight=0.5)
    theirs = LightlyVICReg(lambda_param=5.0, mu_param=2.0, nu_param=0.5)
    _assert_same(ours, theirs, z1, z2)


@pytest.mark.parametrize(("batch", "dim"), CASES)
@pytest.mark.parametrize("redundancy_weight", [5e-3, 0.1])
def test_barlow_equals_lightly(batch: int, dim: int, redundancy_weight: float) -> None:
    z1, z2 = _pair(batch, dim)
    _assert_same(BarlowTwinsLoss(redundancy_weight), LightlyBarlow(redundancy_weight), z1, z2)


def test_vicreg_parts_recombine_to_the_loss() -> None:
    z1, z2 = _pair(16, 8)
    out = VICRegLoss(invariance_weight=3.0, variance_weight=2.0, covariance_weight=0.5)(z1, z2)
    p = out.parts
    expected = 3.0 * p["invariance"] + 2.0 * p["variance"] + 0.5 * p["covariance"]
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize("loss", [VICRegLoss(), BarlowTwinsLoss()], ids=["vicreg", "barlow"])
def test_statistics_are_float32_under_autocast(loss: torch.nn.Module) -> None:
    z1, z2 = (z.detach().bfloat16() for z in _pair(32, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(z1, z2).loss
    exact = loss(z1.float(), z2.float()).loss
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact)
