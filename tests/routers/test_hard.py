import pytest
import torch

from moeheads.errors import ConfigError
from moeheads.routers import create_router


def test_default_one_expert_per_task() -> None:
    gates = create_router("hard", 4, 3, ["inv", "eq"])(torch.randn(2, 4)).gates
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])[:, None, :].expand(2, 2, 3)
    torch.testing.assert_close(gates, expected)


def test_multi_hot_assignment() -> None:
    router = create_router("hard", 4, 4, ["inv", "eq"], assignment={"inv": [0, 3], "eq": [1]})
    gates = router(torch.randn(1, 4)).gates[:, 0]
    torch.testing.assert_close(gates, torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]]))
    assert list(router.parameters()) == []


def test_shared_is_specific_plus_shared() -> None:
    router = create_router("shared", 4, 3, ["inv", "eq"])
    assert router.specific == {"inv": [0], "eq": [1]} and router.shared == [2]
    gates = router(torch.randn(1, 4)).gates[:, 0]
    torch.testing.assert_close(gates, torch.tensor([[1.0, 0, 1], [0, 1, 1]]))


def test_shared_explicit_sets() -> None:
    router = create_router("shared", 4, 5, ["inv", "eq"],
                           specific={"inv": [0, 1], "eq": [2]}, shared=[3, 4])
    gates = router(torch.randn(1, 4)).gates[:, 0]
    torch.testing.assert_close(gates, torch.tensor([[1.0, 1, 0, 1, 1], [0, 0, 1, 1, 1]]))


def test_errors() -> None:
    with pytest.raises(ConfigError, match="at least one expert per task"):
        create_router("hard", 4, 1, ["inv", "eq"])
    with pytest.raises(ConfigError, match=r"outside 0\.\.2"):
        create_router("hard", 4, 3, ["inv", "eq"], assignment={"inv": [0], "eq": [3]})
    with pytest.raises(ConfigError, match="missing"):
        create_router("hard", 4, 3, ["inv", "eq"], assignment={"inv": [0]})
    with pytest.raises(ConfigError, match="num_experts >= 3"):
        create_router("shared", 4, 2, ["inv", "eq"])
    with pytest.raises(ConfigError, match="both task-specific and shared"):
        create_router("shared", 4, 3, ["inv", "eq"], specific={"inv": [0], "eq": [1]},
                      shared=[1, 2])
