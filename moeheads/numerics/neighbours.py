"""What each expert's nearest neighbours share: the class, or the view parameters.

For one embedding set ``x[n, D]`` (an expert's outputs on ``n`` held-out views), each
row's ``k`` nearest other rows by cosine similarity (itself excluded) are its
neighbours ``N(i)``. Two scores:

- **kNN accuracy**: the majority label of ``N(i)`` (ties to the smallest label) equals
  ``y_i``, averaged over rows (leave-one-out kNN classification);
- **neighbour R^2** of a parameter ``a``: predicting ``a_i`` by the mean of ``a`` over
  ``N(i)``, ``R^2 = 1 - sum_i (a_i - mean_{N(i)} a)^2 / sum_i (a_i - mean a)^2``
  (1: neighbours share the parameter exactly, 0: no better than the overall mean;
  ``nan`` for a parameter that does not vary).

An invariant expert should score high kNN accuracy and low neighbour R^2 on colour
parameters; an equivariant one the other way round (the paper's retrieval figure).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.errors import DataError


def nearest(x: Tensor, k: int, *, chunk: int = 2048) -> Tensor:
    """``[n, k]`` indices of each row's ``k`` most cosine-similar other rows, nearest first."""
    if x.dim() != 2 or not 1 <= k < len(x):
        raise DataError(f"nearest neighbours need [n > k, D] rows and k >= 1, got "
                        f"{tuple(x.shape)} and k={k}")
    unit = F.normalize(x.float(), dim=1)
    out = []
    for start in range(0, len(unit), chunk):
        sims = unit[start:start + chunk] @ unit.T
        rows = torch.arange(len(sims))
        sims[rows, rows + start] = -float("inf")
        out.append(sims.topk(k, dim=1).indices)
    return torch.cat(out)


def knn_accuracy(neighbours: Tensor, labels: Tensor) -> float:
    """Leave-one-out accuracy of the neighbours' majority label (ties: smallest label)."""
    votes = labels[neighbours]  # [n, k]
    counts = F.one_hot(votes, int(labels.max()) + 1).sum(dim=1)  # [n, C]
    return float((counts.argmax(dim=1) == labels).double().mean())


def neighbour_r2(neighbours: Tensor, params: Tensor) -> Tensor:
    """``[P]`` R^2 of predicting each parameter by its mean over a row's neighbours."""
    params = params.double()
    predicted = params[neighbours].mean(dim=1)  # [n, P]
    sse = (params - predicted).square().sum(dim=0)
    sst = (params - params.mean(dim=0)).square().sum(dim=0)
    return torch.where(sst > 1e-12 * len(params), 1 - sse / sst.clamp_min(1e-300),
                       torch.full_like(sst, float("nan")))


@dataclass
class ExpertNeighbours:
    """Per expert: kNN accuracy ``[N]``, neighbour R^2 ``[N, P]`` and the neighbours
    ``[N, n, k]``."""

    knn_accuracy: Tensor
    param_r2: Tensor
    neighbours: Tensor


def expert_neighbours(outputs: Tensor, labels: Tensor | None, params: Tensor, *,
                      k: int = 20) -> ExpertNeighbours:
    """Neighbour scores of every expert's outputs ``[N, n, D]`` (labels ``[n]``, parameters
    ``[n, P]``); kNN accuracy is ``nan`` without labels."""
    found = torch.stack([nearest(e, k) for e in outputs])
    accuracy = torch.tensor([knn_accuracy(nb, labels) if labels is not None else float("nan")
                             for nb in found])
    r2 = torch.stack([neighbour_r2(nb, params) for nb in found])
    return ExpertNeighbours(accuracy, r2, found)
