"""The four redundancy estimators: hand-derived cases and a NumPy transcription."""

import numpy as np
import pytest
import torch

from moeheads.numerics.cca import cca
from moeheads.numerics.redundancy import pairwise_redundancy, prepare, redundancy


def _orthonormal(n: int, k: int, seed: int = 0) -> list[torch.Tensor]:
    """``k`` centred, orthonormal columns of length ``n``."""
    m = torch.randn(n, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return list(torch.linalg.qr(m - m.mean(0))[0].T)


def test_identical_sets_are_fully_redundant() -> None:
    x = torch.randn(400, 6)
    r = redundancy(x, x.clone())
    assert (r.mean, r.svcca, r.pwcca, r.top_k) == pytest.approx((1, 1, 1, 1), abs=1e-3)


def test_independent_sets_are_near_zero() -> None:
    g = torch.Generator().manual_seed(1)
    r = redundancy(torch.randn(20000, 4, generator=g), torch.randn(20000, 4, generator=g))
    assert max(r.mean, r.svcca, r.pwcca, r.top_k) < 0.03
    assert (r.images, r.dims, r.svcca_dims) == (20000, (4, 4), (4, 4))


def test_a_mixture_by_hand() -> None:
    # x = [a, 3b], y = [a, c]: correlations 1 (a) and 0. PWCCA weighs x's canonical
    # variates a and b by sum_j |<h_i, x_j>| = |a| and 3|b|: 1/4 and 3/4 -> 0.25
    a, b, c = _orthonormal(300, 3)
    r = redundancy(torch.stack([a, 3 * b], 1), torch.stack([a, c], 1), eps=1e-12, top_k=1)
    assert r.correlations.tolist() == pytest.approx([1.0, 0.0], abs=1e-6)
    assert (r.mean, r.pwcca, r.top_k, r.k) == pytest.approx((0.5, 0.25, 1.0, 1), abs=1e-6)


def test_svcca_drops_directions_with_almost_no_variance() -> None:
    # x = [a, b, 1e-3 c] shares a and c with y = [a, c, d]: correlations (1, 1, 0), mean
    # 2/3; keeping 99% of x's variance drops c (1e-6 of it): correlations (1, 0), 1/2
    a, b, c, d = _orthonormal(300, 4)
    x, y = torch.stack([a, b, 1e-3 * c], 1), torch.stack([a, c, d], 1)
    r = redundancy(x, y, eps=1e-12)
    assert r.mean == pytest.approx(2 / 3, abs=1e-6)
    assert r.svcca == pytest.approx(0.5, abs=1e-6) and r.svcca_dims == (2, 3)
    assert redundancy(x, y, eps=1e-12, variance=1.0).svcca == pytest.approx(2 / 3, abs=1e-6)


def test_pwcca_weighs_the_set_with_fewer_dimensions_either_way_round() -> None:
    # weighed by y = [a, c, d] instead, a would count as much as the zero correlations
    a, b, c, d = _orthonormal(300, 4)
    x, y = torch.stack([a, 3 * b], 1), torch.stack([a, c, d], 1)
    assert redundancy(x, y, eps=1e-12).pwcca == pytest.approx(0.25, abs=1e-6)
    assert redundancy(y, x, eps=1e-12).pwcca == pytest.approx(0.25, abs=1e-6)


def _numpy_reference(x: np.ndarray, y: np.ndarray, eps: float, variance: float, k: int):
    """The published formulas, transcribed directly."""

    def centre(m):
        return m - m.mean(0)

    def inv_sqrt(c):
        c = c + eps * np.trace(c) / len(c) * np.eye(len(c))
        w, v = np.linalg.eigh(c)
        return v @ np.diag(w ** -0.5) @ v.T

    def canonical(a, b):
        n = len(a)
        caa, cbb, cab = a.T @ a / (n - 1), b.T @ b / (n - 1), a.T @ b / (n - 1)
        ia, ib = inv_sqrt(caa), inv_sqrt(cbb)
        u, s, _ = np.linalg.svd(ia @ cab @ ib)
        return np.clip(s, 0, 1), a @ ia @ u[:, : len(s)]

    def reduce(a):
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        keep = np.argmax(np.cumsum(s**2) >= variance * np.sum(s**2) * (1 - 1e-12)) + 1
        return u[:, :keep] * s[:keep]

    x, y = centre(x), centre(y)
    rho, variates = canonical(x, y)
    q, _ = np.linalg.qr(variates)
    alpha = np.abs(q.T @ x).sum(1)
    rho_r, _ = canonical(reduce(x), reduce(y))
    return rho.mean(), rho_r.mean(), (alpha / alpha.sum() * rho).sum(), rho[:k].mean()


def test_agrees_with_a_numpy_transcription_on_random_data() -> None:
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(800, 5))
    x = shared @ rng.normal(size=(5, 12)) + 0.5 * rng.normal(size=(800, 12))
    y = shared @ rng.normal(size=(5, 16)) + rng.normal(size=(800, 16))
    x[:, 3] *= 20  # unequal variances make PWCCA's weights and SVCCA's cut matter
    expected = _numpy_reference(x, y, 1e-4, 0.99, 4)
    r = redundancy(torch.from_numpy(x), torch.from_numpy(y), eps=1e-4, variance=0.99, top_k=4)
    assert (r.mean, r.svcca, r.pwcca, r.top_k) == pytest.approx(expected, abs=1e-9)
    assert r.mean == pytest.approx(cca(torch.from_numpy(x), torch.from_numpy(y)).mean, abs=1e-6)
    assert r.svcca_dims[0] < 12  # the cut did drop directions


def test_pairwise_matrices_match_the_single_comparisons() -> None:
    sets = [torch.randn(200, 4) for _ in range(3)]
    prepared = [prepare(s) for s in sets]
    matrices = pairwise_redundancy(prepared, top_k=2)
    assert matrices["pwcca"][0, 2] == pytest.approx(redundancy(sets[0], sets[2], top_k=2).pwcca)
    assert matrices["top_k"][2, 1] == pytest.approx(redundancy(sets[1], sets[2], top_k=2).top_k)
    assert torch.equal(matrices["mean"].diagonal(), torch.ones(3))
