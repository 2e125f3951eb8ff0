"""Dense soft gating per task: the mechanism shared by MMoE and STAR."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from moeheads.errors import ConfigError
from moeheads.routers.base import Router, RouterOutput
from moeheads.routers.task_linear import TaskLinear


class SoftGateRouter(Router):
    """One input-conditioned softmax gate per task over all experts (dense).

    ``s^t = softmax((W^t h + b^t) / temperature)``: every expert gets a positive
    weight for every row, so every expert (and its BatchNorm) sees every batch.
    Registered twice with the papers' defaults: ``mmoe`` (no bias) and ``star``
    (with bias); the two differ only in those defaults.

    Args:
        in_features: Feature dimension d.
        num_experts: Number of experts N.
        tasks: Task names.
        bias: Whether each gate ``Linear(d, N)`` has a bias.
        temperature: Softmax temperature (> 0); 1 is the plain softmax.
        detach_input: Stop gradients from the gates into the features ``h``.
        zero_init: Start from zero gate weights, i.e. uniform gates ``1/N``.
    """

    def __init__(
        self,
        in_features: int,
        num_experts: int,
        tasks: Sequence[str],
        bias: bool = True,
        temperature: float = 1.0,
        detach_input: bool = False,
        zero_init: bool = False,
    ) -> None:
        super().__init__(in_features, num_experts, tasks)
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.detach_input = detach_input
        self.gate = TaskLinear(in_features, num_experts, self.num_tasks, bias, zero_init)

    def route(self, h: Tensor) -> RouterOutput:
        if self.detach_input:
            h = h.detach()
        logits = self.gate(h) / self.temperature
        return RouterOutput(gates=logits.softmax(dim=-1))
