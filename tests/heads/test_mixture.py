import copy

import pytest
import torch
from torch import nn

from moeheads import ExpertBank, MoEHeads, create_router
from moeheads.errors import ConfigError, ShapeError


def _heads(router: str, num_experts: int, **options) -> MoEHeads:
    bank = ExpertBank(num_experts, in_features=16, out_features=8, hidden_features=[12])
    return MoEHeads(bank, create_router(router, 16, num_experts, ["inv", "eq"], **options))


def test_hard_one_expert_per_task_equals_separate_heads() -> None:
    heads = _heads("hard", 2)
    inv_head, eq_head = heads.experts.expert(0), heads.experts.expert(1)
    h = torch.randn(10, 16)
    out = heads(h)
    torch.testing.assert_close(out.embeddings["inv"], inv_head(h), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.embeddings["eq"], eq_head(h), atol=1e-5, rtol=1e-5)


def test_shared_equals_specific_plus_shared_expert() -> None:
    heads = _heads("shared", 3)
    e_inv, e_eq, e_sh = heads.experts.experts()
    h = torch.randn(10, 16)
    out = heads(h)
    torch.testing.assert_close(out.embeddings["inv"], e_inv(h) + e_sh(h), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.embeddings["eq"], e_eq(h) + e_sh(h), atol=1e-5, rtol=1e-5)


def test_star_with_zero_router_is_mean_of_experts() -> None:
    heads = _heads("star", 4)
    with torch.no_grad():
        heads.router.gate.weight.zero_()
        heads.router.gate.bias.zero_()
    h = torch.randn(10, 16)
    out = heads(h)
    mean = torch.stack([expert(h) for expert in heads.experts.experts()]).mean(0)
    for task in ("inv", "eq"):
        torch.testing.assert_close(out.embeddings[task], mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.gates[task], torch.full((10, 4), 0.25))


def test_star_mixture_by_hand() -> None:
    heads = _heads("star", 3)
    h = torch.randn(6, 16)
    out = heads(h)
    experts = [expert(h) for expert in heads.experts.experts()]
    gates = out.gates["eq"]
    expected = sum(gates[:, k : k + 1] * experts[k] for k in range(3))
    torch.testing.assert_close(out.embeddings["eq"], expected, atol=1e-5, rtol=1e-5)


def test_leading_dimensions_are_kept() -> None:
    heads = _heads("star", 4)
    out = heads(torch.randn(3, 5, 16))
    assert out.embeddings["inv"].shape == (3, 5, 8)
    assert out.gates["eq"].shape == (3, 5, 4)
    flat = heads(torch.randn(3, 5, 16).reshape(15, 16))
    assert flat.embeddings["inv"].shape == (15, 8)


@pytest.mark.parametrize("router", ["star", "mmoe", "topk"])
def test_gradients_reach_experts_router_and_input(router: str) -> None:
    heads = _heads(router, 4)
    h = torch.randn(8, 16, requires_grad=True)
    out = heads(h)
    loss = out.embeddings["inv"].pow(2).mean() + out.embeddings["eq"].mean() + out.aux_loss()
    loss.backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in heads.experts.weights)
    router_grads = [p.grad for p in heads.router.parameters()]
    assert router_grads and all(g is not None and g.abs().sum() > 0 for g in router_grads[:1])


def test_gates_float32_under_bf16_autocast() -> None:
    heads = _heads("star", 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = heads(torch.randn(4, 16))
    assert all(g.dtype == torch.float32 for g in out.gates.values())


def test_topk_aux_losses_reach_the_output() -> None:
    out = _heads("topk", 4, k=1)(torch.randn(4, 16))
    assert set(out.aux_losses) == {"importance", "load_balance", "z_loss"}
    assert float(out.aux_loss().detach()) > 0


def test_build_defaults_to_star_expert_shapes() -> None:
    heads = MoEHeads.build(512, ["inv", "eq"], num_experts=16)
    assert heads.tasks == ("inv", "eq") and heads.out_features == 128
    assert tuple(heads.experts.weights[0].shape) == (16, 512, 512)


def test_errors() -> None:
    heads = _heads("star", 4)
    with pytest.raises(ShapeError, match=r"expects features \[\.\.\., 16\]"):
        heads(torch.randn(4, 15))
    with pytest.raises(ShapeError, match=r"groups \[G, \.\.\., 16\]"):
        heads.forward_groups(torch.randn(4, 16))
    bank = ExpertBank(3, in_features=16, out_features=8)
    with pytest.raises(ConfigError, match="router has 4 experts but the bank has 3"):
        MoEHeads(bank, create_router("star", 16, 4, ["inv"]))
    with pytest.raises(ConfigError, match="unknown router 'sstar'"):
        MoEHeads.build(16, ["inv"], 4, router="sstar")
    with pytest.raises(ConfigError, match="unknown option 'k'"):
        MoEHeads.build(16, ["inv"], 4, router="star", router_options={"k": 2})


def test_exported_expert_is_plain_sequential() -> None:
    heads = _heads("star", 2)
    assert isinstance(heads.experts.expert(1), nn.Sequential)


@pytest.mark.parametrize("router", ["star", "topk"])
def test_groups_equal_one_call_per_group(router: str) -> None:
    options = {"k": 2} if router == "topk" else {}
    heads = _heads(router, 4, **options).train()
    with torch.no_grad():  # non-uniform gates: topk's maps start at zero
        for param in heads.router.parameters():
            param.normal_()
    reference = copy.deepcopy(heads)
    h = torch.randn(3, 2, 5, 16) * torch.tensor([1.0, 2.0, 0.5])[:, None, None, None]
    torch.manual_seed(1)  # the same routing noise for both
    outputs = heads.forward_groups(h)
    torch.manual_seed(1)
    expected = [reference(group) for group in h]
    assert len(outputs) == 3
    for out, ref in zip(outputs, expected, strict=True):
        for task in ("inv", "eq"):
            assert out.embeddings[task].shape == (2, 5, 8)
            torch.testing.assert_close(out.embeddings[task], ref.embeddings[task],
                                       atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.gates[task], ref.gates[task])
        assert out.aux_losses.keys() == ref.aux_losses.keys()
        for name, value in out.aux_losses.items():
            torch.testing.assert_close(value, ref.aux_losses[name])
    assert bool(heads.experts.norms[0].running_mean.ne(0).all())
    torch.testing.assert_close(heads.experts.norms[0].running_var,
                               reference.experts.norms[0].running_var)
