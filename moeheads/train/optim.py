"""Optimisers (SGD, LARS, AdamW) and the per-step learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from moeheads.recipe.schema import OptimizerConfig, ScheduleConfig


class LARS(Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al., 2017).

    For parameters with more than one dimension the update is scaled by the trust
    ratio ``eta * ||w|| / (||g|| + wd * ||w||)``; biases and norm parameters (one
    dimension) get plain SGD, as in SimCLR and BYOL.

    Args:
        params: Parameters or parameter groups.
        lr: Learning rate.
        momentum: Momentum.
        weight_decay: Weight decay, added to the gradient before the trust ratio.
        trust_coefficient: eta.
    """

    def __init__(
        self, params: Iterable[Tensor] | Iterable[dict], lr: float, momentum: float = 0.9,
        weight_decay: float = 0.0, trust_coefficient: float = 0.001,
    ) -> None:
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                    "trust_coefficient": trust_coefficient}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        """One update."""
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                if p.ndim > 1:
                    w_norm, g_norm = p.norm(), grad.norm()
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0),
                        group["trust_coefficient"] * w_norm / g_norm,
                        torch.ones_like(w_norm),
                    )
                    grad = grad * trust
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def parameter_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list:
    """Parameter groups; without ``decay_norm_and_bias`` 1-D parameters get no decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_norm_and_bias:
        return [{"params": params, "weight_decay": weight_decay}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, config: OptimizerConfig, batch_size: int,
                    grad_scaler: bool = False) -> Optimizer:
    """The recipe's optimiser over ``model``'s trainable parameters, lr scaled to the batch.

    ``grad_scaler``: the steps go through an enabled ``GradScaler`` (fp16), which skips
    a step whose gradients overflow.
    """
    lr = config.scaled_lr(batch_size)
    groups = parameter_groups(model, config.weight_decay, config.decay_norm_and_bias)
    if config.name == "sgd":
        # the fused kernel makes one pass per parameter (the default on CPU makes four
        # and allocates the decayed gradient); its updates are the same. Not under a
        # grad scaler: when the scaler skips the first step, the fused kernel keeps its
        # momentum buffers uninitialised, and the next step adds that memory to the
        # weights
        fused = _fusable(groups) and not grad_scaler
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, fused=fused)
    if config.name == "lars":
        return LARS(groups, lr=lr, momentum=config.momentum,
                    trust_coefficient=config.trust_coefficient)
    return torch.optim.AdamW(groups, lr=lr, betas=config.betas)


def _fusable(groups: list) -> bool:
    """Whether every parameter suits the fused SGD kernel (dense floats on CPU or CUDA)."""
    params = [p for group in groups for p in group["params"]]
    return bool(params) and all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params
    )


def lr_factor(step: int, total_steps: int, warmup_steps: int, config: ScheduleConfig) -> float:
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if config.name == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    floor = config.final_lr_ratio
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_schedule(
    optimizer: Optimizer, config: ScheduleConfig, total_steps: int, steps_per_epoch: int
) -> LambdaLR:
    """A per-step ``LambdaLR``: linear warm-up, then cosine (or constant)."""
    warmup = round(config.warmup_epochs * steps_per_epoch)
    return LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, warmup, config))


def recipe_hyperparameters(optimizer: Optimizer) -> list[dict[str, Any]]:
    """Every parameter group's settings (learning rate, momentum, weight decay, ...) as the
    recipe built them, without the parameters: what a resumed run keeps over a checkpoint's."""
    return [{k: v for k, v in group.items() if k not in ("params", "lr", "initial_lr")}
            for group in optimizer.param_groups]


def reapply_recipe(optimizer: Optimizer, scheduler: LambdaLR, built: list[dict[str, Any]],
                   base_lrs: list[float]) -> None:
    """After a checkpoint was loaded: the recipe's settings replace those the checkpoint
    carried (its optimiser groups and the scheduler's base learning rates hold the old
    recipe's), and the current learning rate follows the recipe's schedule at the restored
    step. Optimiser state (momentum buffers) and the step count are kept.

    Args:
        optimizer: The optimiser, restored.
        scheduler: Its schedule, restored (its step count is the checkpoint's).
        built: :func:`recipe_hyperparameters` of the optimiser before the checkpoint loaded.
        base_lrs: The scheduler's base learning rates before the checkpoint loaded.
    """
    scheduler.base_lrs = list(base_lrs)
    for group, settings, base, factor in zip(optimizer.param_groups, built, base_lrs,
                                             scheduler.lr_lambdas, strict=True):
        group.update(settings)
        group["initial_lr"] = base
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # as step() sets
