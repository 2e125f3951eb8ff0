"""Weighted k-nearest-neighbour classification on cosine similarity.

The weighted vote of InstDisc (Wu et al., 2018) as used by solo-learn: the ``k``
training rows most similar to a test row (cosine similarity ``s``) each add
``exp(s / T)`` to their class; the class with the largest sum wins. STAR's
training monitor is the 1-NN special case (labeled train -> test accuracy).
Test rows are processed in chunks so memory stays ``O(chunk_size * n_train)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.errors import ConfigError, DataError


@dataclass
class KNNResult:
    """Outcome of :func:`knn_classify`.

    Attributes:
        top1: Top-1 accuracy.
        top5: Top-5 accuracy (equal to ``top1`` when there are fewer than 5 classes).
        predictions: ``[m]`` predicted class per test row.
    """

    top1: float
    top5: float
    predictions: Tensor


@torch.no_grad()
def knn_scores(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> Tensor:
    """Class scores ``[m, c]``: per class, the sum of ``exp(sim / T)`` over the k nearest rows.

    Args:
        train_features: ``[n, d]`` reference features (L2-normalised here).
        train_labels: ``[n]`` integer labels.
        test_features: ``[m, d]`` query features (moved to the training features' device).
        k: Neighbours per query (capped at ``n``).
        temperature: ``T`` of the weights ``exp(sim / T)``.
        num_classes: Number of classes; ``max(train_labels) + 1`` when omitted.
        chunk_size: Query rows per similarity block.
    """
    if k < 1 or temperature <= 0 or chunk_size < 1:
        raise ConfigError(f"need k >= 1, temperature > 0, chunk_size >= 1 (got {k}, {temperature}, "
                          f"{chunk_size})")
    if train_features.dim() != 2 or train_labels.shape != train_features.shape[:1]:
        raise DataError(f"train features {tuple(train_features.shape)} and labels "
                        f"{tuple(train_labels.shape)} do not match")
    if test_features.dim() != 2 or test_features.shape[1] != train_features.shape[1]:
        raise DataError(f"test features {tuple(test_features.shape)} do not match train "
                        f"features {tuple(train_features.shape)}")
    num_classes = num_classes or int(train_labels.max()) + 1
    k = min(k, len(train_labels))
    train = F.normalize(train_features.float(), dim=1)
    labels = train_labels.to(train.device).long()
    scores = []
    for start in range(0, len(test_features), chunk_size):
        query = F.normalize(test_features[start:start + chunk_size].to(train).float(), dim=1)
        sim, idx = (query @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(query), num_classes, device=query.device)
        scores.append(votes.scatter_add_(1, labels[idx], (sim / temperature).exp()))
    return torch.cat(scores)


def knn_classify(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> KNNResult:
    """Weighted kNN accuracy (defaults: k=200, T=0.1, as in InstDisc and solo-learn).

    Example:
        >>> train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> result = knn_classify(train, torch.tensor([0, 0, 1]), torch.tensor([[0.1, 1.0]]),
        ...                       torch.tensor([1]), k=1)
        >>> result.top1
        1.0
    """
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    scores = knn_scores(train_features, train_labels, test_features, k=k, temperature=temperature,
                        num_classes=num_classes, chunk_size=chunk_size)
    labels = test_labels.to(scores.device).long()
    top = scores.topk(min(5, num_classes), dim=1).indices
    return KNNResult(
        top1=float((top[:, 0] == labels).float().mean()),
        top5=float((top == labels[:, None]).any(dim=1).float().mean()),
        predictions=top[:, 0],
    )


def nn1_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    chunk_size: int = 1024,
) -> float:
    """1-nearest-neighbour cosine accuracy (STAR's per-epoch monitor)."""
    return knn_classify(train_features, train_labels, test_features, test_labels, k=1,
                        chunk_size=chunk_size).top1
