"""BYOL's momentum schedule and the EMA target network."""

import pytest
import torch
from torch import nn

from moeheads.errors import ConfigError
from moeheads.losses import EMA, BYOLLoss, cosine_momentum


def test_cosine_schedule() -> None:
    # tau = 1 - (1 - 0.996) (cos(pi k / K) + 1) / 2: 0.996 at k = 0, 0.998 halfway, 1 at K.
    assert cosine_momentum(0, 10) == pytest.approx(0.996)
    assert cosine_momentum(5, 10) == pytest.approx(0.998)
    assert cosine_momentum(10, 10) == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        cosine_momentum(0, 0)


def test_update_moves_the_target_by_the_momentum() -> None:
    online = nn.Linear(3, 2)
    ema = EMA(online, base_momentum=0.5)
    before = ema.target.weight.clone()
    with torch.no_grad():
        online.weight.add_(1.0)
    tau = ema.update(online, step=0, total_steps=4)
    assert tau == pytest.approx(0.5)
    torch.testing.assert_close(ema.target.weight, 0.5 * before + 0.5 * online.weight)
    assert not any(p.requires_grad for p in ema.parameters())
    assert ema.update(online, step=4, total_steps=4) == pytest.approx(1.0)


def test_update_rejects_another_module() -> None:
    ema = EMA(nn.Linear(3, 2))
    with pytest.raises(ConfigError, match="parameters"):
        ema.update(nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)), 0, 10)


def test_byol_without_targets_uses_detached_online_embeddings() -> None:
    loss = BYOLLoss(embed_dim=8, hidden_dim=16)
    z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
    torch.testing.assert_close(loss(z1, z2).loss, loss(z1, z2, t1=z1, t2=z2).loss)
    # Symmetric: swapping the views swaps the two terms.
    torch.testing.assert_close(loss(z1, z2).loss, loss(z2, z1).loss)
