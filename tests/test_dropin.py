"""moeheads pieces used outside moeheads: with lightly's losses and in a Lightning module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from moeheads import MoEHeads, TaskHead
from moeheads.errors import ConfigError
from moeheads.losses import TensorLoss, create_loss

lightly_loss = pytest.importorskip("lightly.loss")

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_a_task_head_feeds_lightly_ntxent_and_trains_the_shared_heads() -> None:
    torch.manual_seed(0)
    heads = MoEHeads.build(32, ["inv", "eq"], num_experts=4, out_features=16)
    head = heads.task_head("inv")
    assert isinstance(head, TaskHead)
    z0, z1 = head(torch.randn(8, 32)), head(torch.randn(8, 32))
    loss = lightly_loss.NTXentLoss(temperature=0.5)(z0, z1)
    loss.backward()
    assert all(p.grad is not None for p in heads.experts.parameters())


def test_a_task_head_equals_the_task_embedding_of_the_heads() -> None:
    torch.manual_seed(0)
    heads = MoEHeads.build(32, ["inv", "eq"], num_experts=4, out_features=16).eval()
    h = torch.randn(5, 32)
    torch.testing.assert_close(TaskHead(heads, "eq")(h), heads(h).embeddings["eq"])
    with pytest.raises(ConfigError, match="unknown task 'equ'"):
        TaskHead(heads, "equ")


def test_moeheads_losses_as_plain_tensors_equal_lightly() -> None:
    torch.manual_seed(0)
    z0, z1 = torch.randn(16, 8), torch.randn(16, 8)
    ours = create_loss("ntxent", temperature=0.2).as_tensor()
    assert isinstance(ours, TensorLoss)
    value = ours(z0, z1)
    assert isinstance(value, torch.Tensor) and value.dim() == 0
    torch.testing.assert_close(value, lightly_loss.NTXentLoss(temperature=0.2)(z0, z1))
    vicreg = create_loss("vicreg").as_tensor()
    torch.testing.assert_close(vicreg(z0, z1), lightly_loss.VICRegLoss()(z0, z1))


def test_a_tensor_loss_keeps_the_loss_parameters() -> None:
    loss = create_loss("star_eq").as_tensor()
    assert len(list(loss.parameters())) == len(list(loss.loss.parameters())) > 0


def test_the_lightning_example_trains_with_the_auxiliary_losses() -> None:
    pytest.importorskip("pytorch_lightning")
    spec = importlib.util.spec_from_file_location("lightning_moeheads",
                                                  EXAMPLES / "lightning_moeheads.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    try:
        spec.loader.exec_module(example)
        before = [p.detach().clone() for p in example.MoEHeadsModule().heads.parameters()]
        module = example.main(max_steps=3)
    finally:
        sys.modules.pop(spec.name, None)
    assert module.trainer.global_step == 3
    logged = module.trainer.logged_metrics
    assert {"train/loss", "train/inv", "train/eq"} <= set(logged)
    assert any(key.startswith("train/aux/") for key in logged)
    after = list(module.heads.parameters())
    assert len(after) == len(before)
    assert all(torch.isfinite(p).all() for p in after)
