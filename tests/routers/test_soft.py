import math

import pytest
import torch

from moeheads.errors import ConfigError, ShapeError
from moeheads.routers import ROUTERS, SoftGateRouter, create_router


def test_star_gates_by_hand() -> None:
    router = create_router("star", in_features=2, num_experts=3, tasks=["a", "b"])
    with torch.no_grad():
        router.gate.weight.copy_(torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]],
                                               [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]))
        router.gate.bias.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(3.0), 0.0]]))
    h = torch.tensor([[math.log(2.0), 0.0]])
    gates = router(h).gates
    # task a: logits [ln 2, 0, 0] -> exp = [2, 1, 1] / 4
    torch.testing.assert_close(gates[0, 0], torch.tensor([0.5, 0.25, 0.25]))
    # task b: logits = bias [0, ln 3, 0] -> exp = [1, 3, 1] / 5
    torch.testing.assert_close(gates[1, 0], torch.tensor([0.2, 0.6, 0.2]))
    assert router(h).aux_losses == {}


def test_temperature_divides_logits() -> None:
    router = create_router("star", 2, 3, ["a"], temperature=2.0)
    with torch.no_grad():
        router.gate.weight.zero_()
        router.gate.bias.copy_(torch.tensor([[math.log(4.0), 0.0, 0.0]]))
    # logits / 2 = [ln 2, 0, 0] -> [2, 1, 1] / 4
    torch.testing.assert_close(router(torch.zeros(1, 2)).gates[0, 0],
                               torch.tensor([0.5, 0.25, 0.25]))


def test_mmoe_is_bias_free_star_has_bias() -> None:
    mmoe = create_router("mmoe", 4, 3, ["a", "b"])
    star = create_router("star", 4, 3, ["a", "b"])
    assert type(mmoe) is type(star) is SoftGateRouter
    assert mmoe.gate.bias is None and star.gate.bias is not None
    # without bias an all-zero input gives uniform gates whatever the weights
    torch.testing.assert_close(mmoe(torch.zeros(2, 4)).gates, torch.full((2, 2, 3), 1 / 3))
    assert ROUTERS.get("mmoe").options.model_fields["bias"].default is False
    assert ROUTERS.get("star").options.model_fields["bias"].default is True


def test_zero_init_gives_uniform_gates() -> None:
    router = create_router("star", 8, 4, ["inv", "eq"], zero_init=True)
    torch.testing.assert_close(router(torch.randn(5, 8)).gates, torch.full((2, 5, 4), 0.25))


def test_gates_sum_to_one_and_are_float32_under_autocast() -> None:
    router = create_router("star", 16, 6, ["inv", "eq"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gates = router(torch.randn(7, 16).bfloat16()).gates
    assert gates.dtype == torch.float32
    torch.testing.assert_close(gates.sum(-1), torch.ones(2, 7))


def test_detach_input_stops_gradient_to_features() -> None:
    h = torch.randn(3, 4, requires_grad=True)
    create_router("star", 4, 3, ["a"], detach_input=True)(h).gates[0, :, 0].sum().backward()
    assert h.grad is None
    h2 = torch.randn(3, 4, requires_grad=True)
    create_router("star", 4, 3, ["a"])(h2).gates[0, :, 0].sum().backward()
    assert h2.grad is not None and h2.grad.abs().sum() > 0


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        create_router("star", 4, 3, ["a"], temperature=0.0)
    with pytest.raises(ConfigError, match="unknown option 'temprature'"):
        create_router("star", 4, 3, ["a"], temprature=1.0)
    with pytest.raises(ShapeError, match=r"expects features \[B, 4\]"):
        create_router("star", 4, 3, ["a"])(torch.randn(2, 5))
    with pytest.raises(ConfigError, match="unique"):
        create_router("star", 4, 3, ["a", "a"])
