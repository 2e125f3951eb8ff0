"""Writing a custom router: subclass Router, register it, use it by name."""

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from moeheads import ROUTERS, MoEHeads, Router, RouterOutput


class FirstHalfRouter(Router):
    """Uniform gates over the first half of the experts, with a constant auxiliary loss."""

    def __init__(self, in_features: int, num_experts: int, tasks: list[str],
                 penalty: float = 0.5) -> None:
        super().__init__(in_features, num_experts, tasks)
        self.penalty = penalty

    def route(self, h: Tensor) -> RouterOutput:
        half = self.num_experts // 2
        gates = torch.zeros(self.num_tasks, h.shape[0], self.num_experts, device=h.device)
        gates[..., :half] = 1.0 / half
        return RouterOutput(gates, {"penalty": torch.tensor(self.penalty)})


@pytest.fixture
def registered() -> Iterator[None]:
    ROUTERS.register("first_half")(FirstHalfRouter)
    yield
    ROUTERS.unregister("first_half")


def test_custom_router_by_name(registered: None) -> None:
    assert "first_half" in ROUTERS.list()
    heads = MoEHeads.build(8, ["inv", "eq"], num_experts=4, router="first_half",
                           router_options={"penalty": 0.25}, out_features=3)
    h = torch.randn(5, 8)
    out = heads(h)
    experts = [expert(h) for expert in heads.experts.experts()]
    torch.testing.assert_close(out.embeddings["inv"], (experts[0] + experts[1]) / 2,
                               atol=1e-5, rtol=1e-5)
    assert float(out.aux_losses["penalty"]) == 0.25
