"""The equivariant predictor's BatchNorm: per view (the authors' calls) or joint."""

from __future__ import annotations

import copy

import pytest
import torch

from moeheads.losses import EquivariantPredictor
from moeheads.losses.star_eq import STAREquivariantLoss


def _inputs(views: int = 2, batch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, 16, generator=g), torch.randn(views, batch, 11, generator=g)


def _running(module: torch.nn.Module) -> list[torch.Tensor]:
    return [b.clone() for name, b in module.named_buffers() if "running" in name]


def test_per_view_equals_one_call_per_view() -> None:
    torch.manual_seed(0)
    predictor = EquivariantPredictor(16, 11, 8, 32, residual=True)
    assert predictor.batch_norm == "per_view"
    reference = copy.deepcopy(predictor)
    z_o, params = _inputs()
    z_o.requires_grad_(True)
    out = predictor(z_o, params)
    # the authors: the predictor called on view 1, then on view 2
    expected = torch.cat([reference(z_o, params[v : v + 1]) for v in range(2)])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    for ours, theirs in zip(_running(predictor), _running(reference), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    out.square().sum().backward()
    grad = z_o.grad.clone()
    z_o.grad = None
    expected.square().sum().backward()
    torch.testing.assert_close(grad, z_o.grad, atol=1e-5, rtol=1e-4)


def test_joint_normalises_all_views_together() -> None:
    torch.manual_seed(0)
    predictor = EquivariantPredictor(16, 11, 8, 32, batch_norm="joint")
    per_view = copy.deepcopy(predictor)
    per_view.batch_norm = "per_view"
    z_o, params = _inputs()
    out = predictor(z_o, params)
    flat = params.reshape(1, 16, 11)  # one call over all V*B rows
    expected = copy.deepcopy(per_view)(z_o.repeat(2, 1), flat).reshape(2, 8, -1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out, per_view(z_o, params), atol=1e-4)


def test_loss_option() -> None:
    assert STAREquivariantLoss().predictor.batch_norm == "per_view"
    assert STAREquivariantLoss(predictor_norm="joint").predictor.batch_norm == "joint"
    with pytest.raises(Exception, match="per_view"):
        EquivariantPredictor(batch_norm="nope")  # type: ignore[arg-type]
