"""Canonical correlation analysis on constructed data."""

import torch

from moeheads.numerics.cca import cca, expert_task_cca, pairwise_expert_cca


def _known(n: int = 20000):
    g = torch.Generator().manual_seed(0)
    a, b, c, e1, e2 = torch.randn(5, n, generator=g)
    mix_x, mix_y = torch.randn(3, 3, generator=g), torch.randn(3, 3, generator=g)
    x = torch.stack([a, b, c], dim=1) @ mix_x
    y = torch.stack([a, 0.5 * b + 0.75**0.5 * e1, e2], dim=1) @ mix_y
    return x, y


def test_recovers_known_canonical_correlations() -> None:
    x, y = _known()
    result = cca(x, y)
    torch.testing.assert_close(result.correlations[:2], torch.tensor([1.0, 0.5]), atol=0.02, rtol=0)
    assert result.correlations[0] > 0.999 and result.correlations[2] < 0.03
    assert abs(result.mean - 0.5) < 0.02


def test_invariant_to_invertible_maps_and_symmetric() -> None:
    x, y = _known(2000)
    base = cca(x, y).correlations
    torch.testing.assert_close(cca(y, x).correlations, base, atol=1e-5, rtol=0)
    torch.testing.assert_close(cca(x * 100 + 3, y).correlations, base, atol=1e-4, rtol=0)


def test_rank_deficient_embeddings_are_defined() -> None:
    x = torch.randn(50, 2) @ torch.randn(2, 8)  # rank 2 in 8 dimensions
    result = cca(x, torch.randn(50, 4))
    assert torch.isfinite(result.correlations).all() and len(result.correlations) == 4


def test_per_expert_cca() -> None:
    n = 3000
    inv, eq, shared = torch.randn(3, n, 4)
    experts = torch.stack([inv, eq, torch.randn(n, 4)])
    z = {"inv": torch.cat([inv, shared], 1), "eq": torch.cat([eq, shared], 1)}
    per_task = expert_task_cca(experts, z)
    assert per_task["inv"].shape == (3,)
    assert per_task["inv"][0] > 0.99 and per_task["eq"][0] < 0.1
    assert per_task["eq"][1] > 0.99 and per_task["inv"][2] < 0.1
    pairwise = pairwise_expert_cca(experts)
    assert pairwise.shape == (3, 3) and torch.equal(pairwise, pairwise.T)
    assert (pairwise.diagonal() == 1).all() and pairwise[0, 1] < 0.1
