"""Noisy top-k gating per task (Shazeer et al., ICLR 2017) with balancing losses."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.errors import ConfigError
from moeheads.routers.base import ROUTERS, Router, RouterOutput
from moeheads.routers.task_linear import TaskLinear
from moeheads.runtime.gather import all_gather, world_size


@ROUTERS.register("topk")
class TopKRouter(Router):
    """Sparse noisy top-k gating per task, renormalised over the k selected experts.

    Per task t and row b (Shazeer et al. 2017):
    ``H = W_g h + eps * softplus(W_noise h)`` with ``eps ~ N(0, 1)`` in training only,
    ``gates = softmax(H masked to its top k)``, zero elsewhere. Shapes stay static
    (a mask, never a gather), so the router compiles with ``torch.compile``. As in
    the paper, both maps start at zero, so early selection is driven by the noise.

    Auxiliary losses (each averaged over tasks and already multiplied by its weight;
    a weight of 0 leaves the loss out):

    - ``importance``: ``CV(I)^2`` with ``I_n = sum_b gates[b, n]`` and population
      variance (Shazeer et al. 2017).
    - ``load_balance``: ``N * sum_n f_n P_n`` where ``f_n`` is the fraction of the
      ``B * k`` selections that went to expert n and ``P_n`` the mean full-softmax
      probability of expert n over the batch (GShard / Switch); 1 when balanced.
    - ``z_loss``: ``mean_b logsumexp_n(W_g h)^2`` on the noise-free logits (ST-MoE).

    Under ``torchrun`` the batch statistics of ``importance`` and ``load_balance`` are
    taken over the global batch (every rank's rows gathered, with gradient), so N
    processes train as one process with the same global batch; ``global_statistics=False``
    keeps them per rank. The noise is drawn from each rank's own generator, so with
    ``noisy`` on, processes see different noise (as each sees different rows); its state
    is saved per rank in checkpoints, so a resumed run draws the same noise.

    Args:
        in_features: Feature dimension d.
        num_experts: Number of experts N.
        tasks: Task names.
        k: Experts selected per row (1 <= k <= N).
        noisy: Add the learned Gaussian noise during training.
        noise_epsilon: Floor added to the noise standard deviation.
        importance_weight: Weight of the importance loss.
        load_balance_weight: Weight of the load-balancing loss.
        z_loss_weight: Weight of the router z-loss.
        global_statistics: Balance over the global batch under ``torchrun`` (else per rank).
    """

    def __init__(
        self,
        in_features: int,
        num_experts: int,
        tasks: Sequence[str],
        k: int = 2,
        noisy: bool = True,
        noise_epsilon: float = 1e-2,
        importance_weight: float = 0.01,
        load_balance_weight: float = 0.01,
        z_loss_weight: float = 1e-3,
        global_statistics: bool = True,
    ) -> None:
        super().__init__(in_features, num_experts, tasks)
        if not 1 <= k <= num_experts:
            raise ConfigError(f"topk: k must be between 1 and num_experts={num_experts}, got {k}")
        self.k = k
        self.noisy = noisy
        self.noise_epsilon = noise_epsilon
        self.global_statistics = global_statistics
        self.weights = {
            "importance": importance_weight,
            "load_balance": load_balance_weight,
            "z_loss": z_loss_weight,
        }
        self.gate = TaskLinear(in_features, num_experts, self.num_tasks, bias=False, zero_init=True)
        self.noise = (
            TaskLinear(in_features, num_experts, self.num_tasks, bias=False, zero_init=True)
            if noisy
            else None
        )

    def route(self, h: Tensor) -> RouterOutput:
        clean = self.gate(h)  # [T, B, N]
        logits = clean
        if self.noise is not None and self.training:
            std = F.softplus(self.noise(h)) + self.noise_epsilon
            logits = clean + torch.randn_like(clean) * std
        top = logits.topk(self.k, dim=-1).indices
        selected = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top, True)
        gates = logits.masked_fill(~selected, float("-inf")).softmax(dim=-1)
        aux = self._aux_losses(clean, gates, selected)
        return RouterOutput(gates=gates, aux_losses=aux)

    def _aux_losses(self, clean: Tensor, gates: Tensor, selected: Tensor) -> dict[str, Tensor]:
        losses: dict[str, Tensor] = {}
        if self.global_statistics and world_size() > 1:
            # rows of every rank along the batch dimension (dim 1 of [T, B, N])
            clean_all, gates_all, selected_all = (
                all_gather(x.transpose(0, 1).contiguous()).transpose(0, 1)
                for x in (clean, gates, selected.to(gates.dtype)))
            selected = selected_all > 0
            clean, gates = clean_all, gates_all
        if self.weights["importance"] > 0:
            losses["importance"] = importance_loss(gates)
        if self.weights["load_balance"] > 0:
            losses["load_balance"] = load_balance_loss(clean.softmax(-1), selected)
        if self.weights["z_loss"] > 0:
            losses["z_loss"] = z_loss(clean)
        return {name: self.weights[name] * value for name, value in losses.items()}


def importance_loss(gates: Tensor) -> Tensor:
    """Squared coefficient of variation of per-expert gate sums, averaged over tasks.

    Args:
        gates: ``[T, B, N]`` gates.
    """
    importance = gates.sum(dim=1)  # [T, N]
    cv2 = importance.var(dim=-1, unbiased=False) / (importance.mean(dim=-1) ** 2 + 1e-10)
    return cv2.mean()


def load_balance_loss(probs: Tensor, selected: Tensor) -> Tensor:
    """GShard/Switch balancing loss ``N * sum_n f_n P_n``, averaged over tasks.

    Args:
        probs: ``[T, B, N]`` full softmax probabilities.
        selected: ``[T, B, N]`` boolean mask of the chosen experts.
    """
    num_experts = probs.shape[-1]
    fraction = selected.float().sum(dim=1) / selected.float().sum(dim=(1, 2))[:, None]
    mean_prob = probs.mean(dim=1)
    return (num_experts * (fraction * mean_prob).sum(dim=-1)).mean()


def z_loss(logits: Tensor) -> Tensor:
    """Router z-loss ``mean_b logsumexp_n(logits)^2`` (ST-MoE), averaged over tasks."""
    return (torch.logsumexp(logits, dim=-1) ** 2).mean()
