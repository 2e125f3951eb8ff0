"""EquiMod, STAR's equivariant loss and AugSelf: hand-computed cases and invariances."""

import math

import pytest
import torch
from torch import nn

from moeheads.losses import (
    AugSelfLoss,
    EquiModLoss,
    EquivariantPredictor,
    NTXentLoss,
    STAREquivariantLoss,
    nt_xent,
)

E0, E1 = [1.0, 0.0], [0.0, 1.0]


def _constant_phi(predictor: EquivariantPredictor, value: list[float]) -> None:
    """Make phi's output the constant ``value`` (zero last weight, bias = value)."""
    last = predictor.phi[-1]
    assert isinstance(last, nn.Linear)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(value))


def _views_and_original() -> tuple[torch.Tensor, torch.Tensor]:
    # Two images, two views, D = 2. View 1 equals the original; view 2 swaps e0 and e1.
    z_original = torch.tensor([E0, E1])
    z_views = torch.tensor([[E0, E1], [E1, E0]])
    return z_views, z_original


def test_star_eq_hand_computed() -> None:
    # phi == 0, so every prediction is the original: zhat = z_o + 0.
    # Rows of [targets; predictions] (tau = 1):
    #   targets T0..T3 = e0, e1, e1, e0 (view 1 of images 0, 1; view 2 of images 0, 1)
    #   predictions P0..P3 = e0, e1, e0, e1.
    # Four rows are e0 and four are e1, so each anchor sees 3 rows with cosine 1 and
    # 4 with cosine 0: the denominator is 3e + 4.
    #   View-1 pairs (T0-P0, T1-P1, both directions): positive cosine 1 -> log(3 + 4/e).
    #   View-2 pairs (T2-P2, T3-P3): positive cosine 0 -> log(3e + 4).
    # Mean over the 8 anchors: (log(3 + 4/e) + log(3e + 4)) / 2.
    loss = STAREquivariantLoss(embed_dim=2, param_embed_dim=4, hidden_dim=8, temperature=1.0)
    _constant_phi(loss.predictor, [0.0, 0.0])
    z_views, z_original = _views_and_original()
    out = loss(z_views, z_original, torch.randn(2, 2, 11))
    e = math.e
    expected = (math.log(3 + 4 / e) + math.log(3 * e + 4)) / 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.parts["prediction_cosine"].item() == pytest.approx(0.5)


def test_equimod_hand_computed() -> None:
    # Without the residual and with phi == e0, every prediction is e0 (tau = 1):
    #   targets T0..T3 = e0, e1, e1, e0; predictions P0..P3 = e0.
    # Six rows are e0, two are e1.
    #   T0, T3 (e0; 5 others at cosine 1, 2 at 0; positive e0): log(5 + 2/e).
    #   T1, T2 (e1; 6 others at 0, T2/T1 at 1; positive e0 at 0): log(6 + e).
    #   P0, P3 (e0; positive e0 at 1): log(5 + 2/e).
    #   P1, P2 (e0; positive e1 at 0; 5 others at 1, 2 at 0): log(5e + 2).
    loss = EquiModLoss(embed_dim=2, param_embed_dim=4, hidden_dim=8, temperature=1.0)
    _constant_phi(loss.predictor, E0)
    z_views, z_original = _views_and_original()
    out = loss(z_views, z_original, torch.randn(2, 2, 11))
    e = math.e
    expected = (4 * math.log(5 + 2 / e) + 2 * math.log(6 + e) + 2 * math.log(5 * e + 2)) / 8
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)


def test_residual_is_the_only_difference() -> None:
    star = EquivariantPredictor(embed_dim=8, param_dim=11, param_embed_dim=4, hidden_dim=16)
    plain = EquivariantPredictor(8, 11, 4, 16, residual=False)
    plain.load_state_dict(star.state_dict())
    z_o, params = torch.randn(5, 8), torch.randn(3, 5, 11)
    torch.testing.assert_close(star(z_o, params) - plain(z_o, params), z_o.expand(3, 5, 8))


def test_predictor_uses_the_parameters() -> None:
    predictor = EquivariantPredictor(embed_dim=8, param_embed_dim=4, hidden_dim=16).eval()
    z_o = torch.randn(5, 8)
    params = torch.randn(2, 5, 11)
    moved = params.clone()
    moved[1] += 1.0
    out, out_moved = predictor(z_o, params), predictor(z_o, moved)
    torch.testing.assert_close(out[0], out_moved[0])
    assert not torch.allclose(out[1], out_moved[1])


def test_default_architecture_matches_star() -> None:
    predictor = STAREquivariantLoss().predictor
    assert (predictor.psi.in_features, predictor.psi.out_features) == (11, 128)
    linears = [m for m in predictor.phi if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (256, 512),
        (512, 512),
        (512, 128),
    ]
    assert [m.bias is not None for m in linears] == [False, False, True]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in predictor.phi) == 2
    assert STAREquivariantLoss().temperature == 0.2


def test_equivariant_ntxent_is_ntxent_on_targets_and_predictions() -> None:
    loss = STAREquivariantLoss(embed_dim=16, param_embed_dim=8, hidden_dim=32)
    z_views, z_o, params = torch.randn(2, 6, 16), torch.randn(6, 16), torch.randn(2, 6, 11)
    predictions = loss.predictor(z_o, params).reshape(-1, 16)
    expected = NTXentLoss(0.2)(z_views.reshape(-1, 16), predictions).loss
    torch.testing.assert_close(loss(z_views, z_o, params).loss, expected)


@pytest.mark.parametrize("cls", [EquiModLoss, STAREquivariantLoss])
def test_equivariant_is_symmetric_in_the_views(cls: type) -> None:
    loss = cls(embed_dim=16, param_embed_dim=8, hidden_dim=32)
    z_views, z_o, params = torch.randn(2, 6, 16), torch.randn(6, 16), torch.randn(2, 6, 11)
    swapped = loss(z_views.flip(0), z_o, params.flip(0)).loss
    torch.testing.assert_close(loss(z_views, z_o, params).loss, swapped)


def test_nt_xent_is_symmetric() -> None:
    a, b = torch.randn(8, 4), torch.randn(8, 4)
    torch.testing.assert_close(nt_xent(a, b, 0.2), nt_xent(b, a, 0.2))


def test_augself_hand_computed() -> None:
    # Predictions are tanh(0) = 0, so each group's loss is the mean squared target.
    # View 2 of image 0 moves the crop top by +4 and the contrast by +2 (standardised
    # units); target_scale 4 gives differences of -/+1 (crop) and -/+0.5 (contrast) for
    # the two ordered pairs of image 0, zero for image 1.
    #   crop:  rows (pair, image) = 4 rows x 4 columns, two entries of squared value 1
    #          -> 2 / 16 = 0.125
    #   color: two entries of 0.25 over 16 -> 0.5 / 16 = 0.03125
    # total = 1.0 * 0.125 + 2.0 * 0.03125 = 0.1875.
    loss = AugSelfLoss(in_features=8, hidden_dim=16, crop=1.0, color=2.0)
    for predictor in loss.predictors.values():
        with torch.no_grad():
            predictor[-1].weight.zero_()
            predictor[-1].bias.zero_()
    params = torch.zeros(2, 2, 11)
    params[1, 0, 0] = 4.0
    params[1, 0, 6] = 2.0
    out = loss(torch.randn(2, 2, 8), params)
    assert out.parts["crop"].item() == pytest.approx(0.125)
    assert out.parts["color"].item() == pytest.approx(0.03125)
    assert out.loss.item() == pytest.approx(0.1875)


def test_augself_is_symmetric_in_the_views() -> None:
    loss = AugSelfLoss(in_features=8, hidden_dim=16, flip=0.5)
    h, params = torch.randn(2, 6, 8), torch.randn(2, 6, 11)
    torch.testing.assert_close(loss(h, params).loss, loss(h.flip(0), params.flip(0)).loss)
    assert sorted(loss.predictors) == ["color", "crop", "flip"]
