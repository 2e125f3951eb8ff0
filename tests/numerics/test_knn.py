"""Weighted kNN and the 1-NN monitor."""

import math

import pytest
import torch

from moeheads.errors import ConfigError, DataError
from moeheads.numerics.knn import knn_classify, knn_scores, nn1_accuracy

# Unit vectors: class 0 at 0 degrees; class 1 at 90 degrees and at cos = 0.6.
TRAIN = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.6, 0.8]])
LABELS = torch.tensor([0, 1, 1])


def test_scores_by_hand() -> None:
    query = torch.tensor([[3.0, 0.0]])  # normalised to [1, 0]: similarities 1, 0, 0.6
    # k = 2 keeps similarities 1 (class 0) and 0.6 (class 1); weights exp(s / 0.1).
    scores = knn_scores(TRAIN, LABELS, query, k=2, temperature=0.1)
    torch.testing.assert_close(scores, torch.tensor([[math.exp(10), math.exp(6)]]))
    # k = 3 adds similarity 0 (class 1): exp(0) = 1.
    scores = knn_scores(TRAIN, LABELS, query, k=3, temperature=0.1)
    torch.testing.assert_close(scores, torch.tensor([[math.exp(10), math.exp(6) + 1]]))


def test_votes_can_outweigh_the_nearest_neighbour() -> None:
    query = torch.tensor([[0.8, 0.6]])  # similarities 0.8, 0.6, 0.96
    # A large temperature makes the vote nearly a count: class 1 has two neighbours.
    result = knn_classify(TRAIN, LABELS, query, torch.tensor([1]), k=3, temperature=100.0)
    assert result.top1 == 1.0
    # 1-NN: the nearest row (0.96) is class 1.
    assert nn1_accuracy(TRAIN, LABELS, query, torch.tensor([1])) == 1.0
    assert nn1_accuracy(TRAIN, LABELS, torch.tensor([[1.0, 0.1]]), torch.tensor([1])) == 0.0


def test_chunking_does_not_change_scores() -> None:
    train, test = torch.randn(300, 16), torch.randn(50, 16)
    labels = torch.randint(0, 7, (300,))
    whole = knn_scores(train, labels, test, k=20, chunk_size=1000)
    chunked = knn_scores(train, labels, test, k=20, chunk_size=7)
    torch.testing.assert_close(whole, chunked)


def test_clusters_and_top5() -> None:
    centres = torch.eye(6) * 5
    labels = torch.arange(6).repeat_interleave(30)
    x = centres[labels] + torch.randn(len(labels), 6)
    result = knn_classify(x[::2], labels[::2], x[1::2], labels[1::2], k=10)
    assert result.top1 > 0.95 and result.top5 >= result.top1
    assert result.predictions.shape == (90,)


def test_user_errors() -> None:
    with pytest.raises(ConfigError):
        knn_scores(TRAIN, LABELS, TRAIN, k=0)
    with pytest.raises(DataError):
        knn_scores(TRAIN, LABELS, torch.randn(2, 3))
