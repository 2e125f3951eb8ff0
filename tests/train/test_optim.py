"""Optimisers, the learning-rate schedule and the training sampler."""

import math

import pytest
import torch
from torch import nn

from moeheads.errors import ConfigError
from moeheads.recipe.schema import OptimizerConfig, ScheduleConfig
from moeheads.train.optim import LARS, build_optimizer, lr_factor, parameter_groups
from moeheads.train.sampler import EpochSampler


def test_lars_step_by_hand() -> None:
    w = nn.Parameter(torch.tensor([[3.0, 4.0]]))  # ||w|| = 5
    w.grad = torch.tensor([[0.0, 2.0]])  # ||g|| = 2
    LARS([w], lr=0.1, momentum=0.9, weight_decay=0.0, trust_coefficient=0.01).step()
    # trust = 0.01 * 5 / 2 = 0.025; update = lr * trust * g = 0.1 * 0.025 * [0, 2]
    torch.testing.assert_close(w.detach(), torch.tensor([[3.0, 4.0 - 0.005]]))


def test_lars_leaves_biases_unscaled() -> None:
    b = nn.Parameter(torch.tensor([1.0, 1.0]))
    b.grad = torch.tensor([0.5, -0.5])
    LARS([b], lr=0.1, trust_coefficient=0.001).step()
    torch.testing.assert_close(b.detach(), torch.tensor([0.95, 1.05]))


def test_lr_scaling_and_weight_decay_groups() -> None:
    config = OptimizerConfig(lr=0.03, lr_scaling="linear", base_batch_size=256)
    assert config.scaled_lr(512) == pytest.approx(0.06)
    assert OptimizerConfig(lr=0.03, lr_scaling="sqrt").scaled_lr(1024) == pytest.approx(0.06)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    groups = parameter_groups(model, 5e-4, decay_norm_and_bias=False)
    assert [len(g["params"]) for g in groups] == [1, 3]  # weight | bias, BN weight, BN bias
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    optimizer = build_optimizer(model, OptimizerConfig(name="adamw", lr=1e-3), 256)
    assert isinstance(optimizer, torch.optim.AdamW)


def test_warmup_then_cosine_by_hand() -> None:
    config = ScheduleConfig(name="cosine", warmup_epochs=1, final_lr_ratio=0.0)
    total, warmup = 10, 2
    assert lr_factor(0, total, warmup, config) == pytest.approx(0.5)  # (0 + 1) / 2
    assert lr_factor(1, total, warmup, config) == pytest.approx(1.0)
    assert lr_factor(2, total, warmup, config) == pytest.approx(1.0)  # cosine starts at 1
    # half-way through the 8 cosine steps: 0.5 * (1 + cos(pi / 2)) = 0.5
    assert lr_factor(6, total, warmup, config) == pytest.approx(0.5)
    assert lr_factor(10, total, warmup, config) == pytest.approx(0.0, abs=1e-12)
    floor = ScheduleConfig(final_lr_ratio=0.1)
    assert lr_factor(10, total, 0, floor) == pytest.approx(0.1)
    assert lr_factor(5, total, 0, ScheduleConfig(name="constant")) == 1.0
    assert lr_factor(5, 10, 0, ScheduleConfig()) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def test_ranks_together_see_the_single_process_batches() -> None:
    single = EpochSampler(50, global_batch=8, seed=3)
    single.set_epoch(2)
    order = list(single)
    assert len(order) == 48 and len(set(order)) == 48  # 6 full batches, no repeats
    ranks = [EpochSampler(50, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for sampler in ranks:
        sampler.set_epoch(2)
    per_rank = [list(s) for s in ranks]
    for step in range(6):
        together = per_rank[0][step * 4:(step + 1) * 4] + per_rank[1][step * 4:(step + 1) * 4]
        assert sorted(together) == sorted(order[step * 8:(step + 1) * 8])


def test_epochs_differ_and_start_step_skips() -> None:
    sampler = EpochSampler(40, global_batch=4, seed=0)
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0, start_step=3)
    assert list(sampler) == first[12:] and len(sampler) == 28


def test_sampler_errors() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        EpochSampler(40, global_batch=6, world_size=4)
    with pytest.raises(ConfigError, match="fewer than one batch"):
        EpochSampler(3, global_batch=4)


@pytest.mark.parametrize("name", ["sgd", "lars", "adamw"])
def test_a_first_step_skipped_by_the_grad_scaler_leaves_no_garbage(name: str) -> None:
    """fp16 training skips steps whose gradients overflow; the first real step after
    such a skip must equal a step taken without the skip (found on an H200: fused SGD
    kept an uninitialised momentum buffer, and the next step wrote inf into weights)."""
    config = OptimizerConfig(name=name, lr=0.1, momentum=0.9, weight_decay=0.0)

    def train(skip_first: bool) -> torch.Tensor:
        torch.manual_seed(0)
        model = nn.Linear(64, 64)
        optimizer = build_optimizer(model, config, 256, grad_scaler=True)
        scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
        for step in range(3):
            loss = model(torch.ones(2, 64)).square().mean()
            if skip_first and step == 0:
                loss = loss * float("inf")
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
        return model.weight.detach()

    skipped, reference = train(True), train(False)
    assert torch.isfinite(skipped).all()
    # the skipped run took two real steps, the reference three: compare with two
    torch.manual_seed(0)
    model = nn.Linear(64, 64)
    optimizer = build_optimizer(model, config, 256, grad_scaler=True)
    for _ in range(2):
        model(torch.ones(2, 64)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.testing.assert_close(skipped, model.weight.detach())
    assert not torch.equal(skipped, reference)


def test_sgd_is_fused_unless_a_grad_scaler_can_skip_steps() -> None:
    model = nn.Linear(4, 4)
    config = OptimizerConfig(name="sgd", lr=0.1)
    assert build_optimizer(model, config, 256).defaults["fused"]
    assert not build_optimizer(model, config, 256, grad_scaler=True).defaults["fused"]
