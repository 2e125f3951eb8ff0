"""Per-expert nearest neighbours: kNN accuracy and neighbour R^2 by hand."""

import math

import pytest
import torch

from moeheads.errors import DataError
from moeheads.numerics.neighbours import expert_neighbours, knn_accuracy, nearest, neighbour_r2

# two tight pairs: 0-1 and 2-3
POINTS = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])


def test_nearest_excludes_itself() -> None:
    assert nearest(POINTS, 1).flatten().tolist() == [1, 0, 3, 2]
    assert nearest(POINTS, 2, chunk=3)[:, 0].tolist() == [1, 0, 3, 2]
    with pytest.raises(DataError, match="k >= 1"):
        nearest(POINTS, 4)


def test_knn_accuracy_by_hand() -> None:
    found = nearest(POINTS, 1)
    assert knn_accuracy(found, torch.tensor([0, 0, 1, 1])) == 1.0
    assert knn_accuracy(found, torch.tensor([0, 1, 0, 1])) == 0.0
    # k = 2: each row's pair partner and one of the other pair, a 1-1 tie that goes to
    # the smaller label: right for rows 0 and 1, wrong for 2 and 3
    assert knn_accuracy(nearest(POINTS, 2), torch.tensor([0, 0, 1, 1])) == 0.5
    # k = 3: every row sees two of the other class
    assert knn_accuracy(nearest(POINTS, 3), torch.tensor([0, 0, 1, 1])) == 0.0


def test_neighbour_r2_by_hand() -> None:
    # a = 0, 1, 2, 3 predicted by the neighbour's 1, 0, 3, 2: SSE 4, SST 5 -> R^2 = 0.2;
    # a parameter that is constant has no R^2
    params = torch.tensor([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    r2 = neighbour_r2(nearest(POINTS, 1), params)
    assert float(r2[0]) == pytest.approx(0.2) and math.isnan(float(r2[1]))


def test_expert_neighbours_scores_each_expert() -> None:
    rotated = POINTS[:, [1, 0]] * torch.tensor([1.0, -1.0])  # a rotation keeps the pairs
    outputs = torch.stack([POINTS, rotated])
    labels = torch.tensor([0, 0, 1, 1])
    found = expert_neighbours(outputs, labels, torch.arange(4.0)[:, None], k=1)
    assert found.knn_accuracy.tolist() == [1.0, 1.0]
    assert found.param_r2[:, 0].tolist() == pytest.approx([0.2, 0.2])
    assert math.isnan(float(expert_neighbours(outputs, None, torch.ones(4, 1), k=1)
                            .knn_accuracy[0]))
