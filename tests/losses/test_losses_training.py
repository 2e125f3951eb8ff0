"""Every loss decreases under a few gradient steps on a toy problem."""

import pytest
import torch
from torch import nn

from moeheads.losses import create_loss

STEPS = 30


def _encoder(in_features: int, out_features: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_features, 32), nn.ReLU(), nn.Linear(32, out_features))


@pytest.mark.parametrize("name", ["ntxent", "vicreg", "barlow", "byol"])
def test_invariant_losses_decrease(name: str) -> None:
    options = {"embed_dim": 16, "hidden_dim": 32} if name == "byol" else {}
    loss = create_loss(name, **options)
    encoder = _encoder(8, 16)
    x = torch.randn(32, 8)
    views = torch.stack([x + 0.1 * torch.randn_like(x) for _ in range(2)])
    optimiser = torch.optim.Adam([*encoder.parameters(), *loss.parameters()], lr=1e-2)
    losses = []
    for _ in range(STEPS):
        z = encoder(views)
        out = loss(z[0], z[1])
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("name", ["equimod", "star_eq"])
def test_equivariant_losses_decrease(name: str) -> None:
    loss = create_loss(name, embed_dim=16, param_dim=3, param_embed_dim=8, hidden_dim=32)
    encoder = _encoder(8, 16)
    x = torch.randn(32, 8)
    params = torch.randn(2, 32, 3)
    shift = torch.randn(3, 8)
    views = x + params @ shift  # each view moves the image along its parameters
    optimiser = torch.optim.Adam([*encoder.parameters(), *loss.parameters()], lr=1e-2)
    losses = []
    for _ in range(STEPS):
        out = loss(encoder(views), encoder(x), params)
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_augself_decreases() -> None:
    loss = create_loss("augself", in_features=16, hidden_dim=32)
    encoder = _encoder(8, 16)
    x = torch.randn(32, 8)
    params = torch.randn(2, 32, 11)
    views = x + params @ torch.randn(11, 8)
    optimiser = torch.optim.Adam([*encoder.parameters(), *loss.parameters()], lr=1e-2)
    losses = []
    for _ in range(STEPS):
        out = loss(encoder(views), params)
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
