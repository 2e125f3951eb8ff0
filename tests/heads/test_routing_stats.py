import math

import torch

from moeheads.heads import routing_stats


def test_stats_by_hand() -> None:
    gates = {
        # inv always uses expert 0: usage [1, 0, 0, 0], entropy 0
        "inv": torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]]),
        # eq splits evenly between experts 0 and 1: usage [.5, .5, 0, 0], entropy ln 2
        "eq": torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]]),
    }
    stats = routing_stats(gates)
    torch.testing.assert_close(stats.usage["eq"], torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert stats.entropy["inv"] == 0.0
    assert math.isclose(stats.entropy["eq"], math.log(2), rel_tol=1e-6)
    # dead threshold 1/(10*4) = 0.025
    assert stats.dead == {"inv": [1, 2, 3], "eq": [2, 3]}
    # overlap: min(1, .5) + min(0, .5) = 0.5
    assert math.isclose(stats.overlap["inv|eq"], 0.5)


def test_multi_hot_gates_are_normalised() -> None:
    # STAR-SS gates [1, 0, 1] and [0, 1, 1] -> usage [.5, 0, .5] and [0, .5, .5]
    stats = routing_stats({"inv": torch.tensor([[1.0, 0, 1]]), "eq": torch.tensor([[0.0, 1, 1]])})
    torch.testing.assert_close(stats.usage["inv"], torch.tensor([0.5, 0.0, 0.5]))
    assert math.isclose(stats.overlap["inv|eq"], 0.5)
    assert stats.as_dict()["dead"] == {"inv": [1], "eq": [0]}


def test_mean_entropy_differs_from_usage_entropy() -> None:
    # each row one expert, but different rows different experts: per-row entropy 0,
    # usage uniform over 2 experts: usage entropy ln 2
    stats = routing_stats({"t": torch.tensor([[1.0, 0], [0, 1.0]])})
    assert stats.entropy["t"] == 0.0
    assert math.isclose(stats.usage_entropy["t"], math.log(2), rel_tol=1e-6)
