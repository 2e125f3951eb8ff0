"""Few-shot episodes and their logistic-regression evaluation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from moeheads.errors import DataError
from moeheads.eval.fewshot import confidence_interval, fewshot_eval, sample_episodes

_ORDER = torch.randperm(300, generator=torch.Generator().manual_seed(0))
LABELS = torch.arange(12).repeat_interleave(25)[_ORDER]  # 12 classes of 25 rows, shuffled


def test_episodes_have_distinct_classes_and_disjoint_rows() -> None:
    episodes = sample_episodes(LABELS, num_episodes=200, ways=5, shots=5, queries=16, seed=3)
    assert episodes.classes.shape == (200, 5)
    assert episodes.support.shape == (200, 5, 5) and episodes.query.shape == (200, 5, 16)
    for e in range(200):
        assert len(set(episodes.classes[e].tolist())) == 5
        support = set(episodes.support[e].flatten().tolist())
        query = set(episodes.query[e].flatten().tolist())
        assert len(support) == 25 and len(query) == 80 and not support & query
        for i in range(5):
            rows = torch.cat([episodes.support[e, i], episodes.query[e, i]])
            assert (LABELS[rows] == episodes.classes[e, i]).all()


def test_sampler_is_seeded() -> None:
    a = sample_episodes(LABELS, 20, seed=1)
    b = sample_episodes(LABELS, 20, seed=1)
    c = sample_episodes(LABELS, 20, seed=2)
    assert torch.equal(a.query, b.query) and not torch.equal(a.query, c.query)


def test_too_few_rows_per_class() -> None:
    with pytest.raises(DataError, match="only"):
        sample_episodes(LABELS, ways=5, shots=5, queries=21)


def test_separated_clusters_give_perfect_accuracy() -> None:
    centres = torch.eye(12) * 10
    x = centres[LABELS] + torch.randn(300, 12)
    result = fewshot_eval(x, LABELS, shots=1, num_episodes=100)
    assert result.accuracy > 0.99 and result.ways == 5 and result.shots == 1
    assert result.episode_accuracies.shape == (100,)


def test_fast_variant_matches_scikit_learn_multinomial_per_episode() -> None:
    # Default l2 = 1 / (N K) is scikit-learn's default C = 1 on L2-normalised features.
    x = torch.randn(12, 32)[LABELS] * 0.3 + torch.randn(300, 32)
    result = fewshot_eval(x, LABELS, shots=5, num_episodes=10, seed=4, variant="fast")
    episodes = sample_episodes(LABELS, 10, shots=5, seed=4)
    xn = F.normalize(x, dim=1).numpy()
    support_y, query_y = np.repeat(np.arange(5), 5), np.repeat(np.arange(5), 16)
    for e in range(10):
        model = LogisticRegression().fit(xn[episodes.support[e].flatten()], support_y)
        expected = (model.predict(xn[episodes.query[e].flatten()]) == query_y).mean()
        assert result.episode_accuracies[e].item() == pytest.approx(expected, abs=1e-6)


def test_confidence_interval_formula() -> None:
    values = torch.tensor([0.5, 0.7, 0.9, 1.0])
    expected = 1.96 * float(np.std(values.numpy())) / math.sqrt(4)
    assert confidence_interval(values) == pytest.approx(expected)


@pytest.mark.parametrize("shots", [1, 5])
def test_paper_variant_matches_liblinear_ovr_per_episode(shots: int) -> None:
    """AugSelf: LogisticRegression(solver="liblinear") (one-vs-rest, C = 1, intercept
    penalised) on raw features; scikit-learn >= 1.7 needs the explicit one-vs-rest wrapper."""
    from sklearn.multiclass import OneVsRestClassifier

    from moeheads.eval.ovr_logistic import fit_ovr_logistic, ovr_weights

    g = torch.Generator().manual_seed(5)
    x = (torch.randn(12, 32, generator=g)[LABELS] * 0.6 + torch.randn(300, 32, generator=g))
    x = x.relu() * 4  # non-negative, unnormalised like pooled ResNet features
    result = fewshot_eval(x, LABELS, shots=shots, num_episodes=12, seed=6)
    episodes = sample_episodes(LABELS, 12, shots=shots, seed=6)
    support_y, query_y = np.repeat(np.arange(5), shots), np.repeat(np.arange(5), 16)
    accuracies = []
    for e in range(12):
        support = x[episodes.support[e].flatten()]
        model = OneVsRestClassifier(LogisticRegression(solver="liblinear", C=1.0, tol=1e-8,
                                                       max_iter=1000))
        model.fit(support.numpy(), support_y)
        expected = (model.predict(x[episodes.query[e].flatten()].numpy()) == query_y).mean()
        accuracies.append(expected)
        assert result.episode_accuracies[e].item() == pytest.approx(expected, abs=1e-6)
        coef, intercept = ovr_weights(support[None], fit_ovr_logistic(
            support[None], torch.from_numpy(support_y)[None], 5))
        sk_coef = np.stack([est.coef_[0] for est in model.estimators_])
        sk_intercept = np.array([est.intercept_[0] for est in model.estimators_])
        np.testing.assert_allclose(coef[0].numpy(), sk_coef, atol=1e-5)
        np.testing.assert_allclose(intercept[0].numpy(), sk_intercept, atol=1e-5)
    assert 0.2 < np.mean(accuracies) < 1.0  # a non-trivial problem
