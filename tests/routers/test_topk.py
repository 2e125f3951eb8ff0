import math

import pytest
import torch

from moeheads.errors import ConfigError
from moeheads.routers import create_router


def _router(**options):
    router = create_router("topk", in_features=1, num_experts=4, tasks=["a"], k=2, **options)
    with torch.no_grad():
        router.gate.weight.copy_(torch.tensor([[[2.0], [1.0], [0.0], [-1.0]]]))
    return router.eval()


def test_gates_by_hand() -> None:
    out = _router()(torch.tensor([[1.0], [-1.0]]))
    s = math.e / (1 + math.e)  # softmax([2, 1]) = [e, 1] / (e + 1)
    # row 1: logits [2, 1, 0, -1] -> experts 0, 1; row 2: [-2, -1, 0, 1] -> experts 3, 2
    expected = torch.tensor([[s, 1 - s, 0, 0], [0, 0, 1 - s, s]])
    torch.testing.assert_close(out.gates[0], expected)


def test_aux_losses_by_hand() -> None:
    router = _router(importance_weight=1.0, load_balance_weight=1.0, z_loss_weight=1.0)
    aux = router(torch.tensor([[1.0], [-1.0]])).aux_losses
    # importance I = [s, 1-s, 1-s, s], mean 1/2, every deviation (s - 1/2) = tanh(1/2)/2,
    # so CV^2 = (tanh(1/2)/2)^2 / (1/2)^2 = tanh(1/2)^2
    torch.testing.assert_close(aux["importance"], torch.tensor(math.tanh(0.5) ** 2))
    # each expert gets 1 of the 4 selections (f = 1/4) and the two rows' softmaxes are
    # mirror images, so sum_n f_n P_n = 1/4 and N * 1/4 = 1 (perfect balance)
    torch.testing.assert_close(aux["load_balance"], torch.tensor(1.0))
    # z-loss: the mean over rows of logsumexp^2, with row 1 logits [2, 1, 0, -1] and
    # row 2 logits [-2, -1, 0, 1]
    lse1 = math.log(math.exp(2) + math.exp(1) + 1 + math.exp(-1))
    lse2 = math.log(math.exp(-2) + math.exp(-1) + 1 + math.exp(1))
    torch.testing.assert_close(aux["z_loss"], torch.tensor((lse1**2 + lse2**2) / 2))


def test_weights_scale_and_zero_weight_omits() -> None:
    h = torch.tensor([[1.0], [-1.0]])
    full = _router(importance_weight=1.0, load_balance_weight=1.0, z_loss_weight=1.0)(h)
    scaled = _router(importance_weight=0.5, load_balance_weight=0.0, z_loss_weight=2.0)(h)
    assert set(scaled.aux_losses) == {"importance", "z_loss"}
    torch.testing.assert_close(scaled.aux_losses["importance"],
                               0.5 * full.aux_losses["importance"])
    torch.testing.assert_close(scaled.aux_losses["z_loss"], 2 * full.aux_losses["z_loss"])


def test_unbalanced_routing_is_penalised() -> None:
    router = _router(importance_weight=1.0, load_balance_weight=1.0)
    aux = router(torch.tensor([[1.0], [1.0]])).aux_losses  # both rows pick experts 0, 1
    assert aux["load_balance"] > 1.0 and aux["importance"] > math.tanh(0.5) ** 2


def test_training_noise_keeps_k_experts_and_sums_to_one() -> None:
    router = create_router("topk", 8, 6, ["inv", "eq"], k=3).train()
    gates = router(torch.randn(50, 8)).gates
    assert gates.dtype == torch.float32
    assert ((gates > 0).sum(-1) == 3).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(2, 50))
    # zero-initialised maps: only the noise decides, so selections vary between rows
    assert len({tuple(row.nonzero().flatten().tolist()) for row in gates[0]}) > 1


def test_eval_is_deterministic() -> None:
    router = create_router("topk", 8, 6, ["a"], k=2).eval()
    with torch.no_grad():
        router.gate.weight.normal_()
    h = torch.randn(4, 8)
    torch.testing.assert_close(router(h).gates, router(h).gates)


def test_gradients_reach_gate_weights_and_input() -> None:
    router = create_router("topk", 8, 6, ["a"], k=2)
    h = torch.randn(10, 8, requires_grad=True)
    out = router(h)
    (out.gates[0, :, 0].sum() + sum(out.aux_losses.values())).backward()
    assert router.gate.weight.grad.abs().sum() > 0
    assert h.grad is not None


def test_compiles_without_graph_breaks() -> None:
    router = create_router("topk", 8, 6, ["a", "b"], k=2).eval()
    compiled = torch.compile(router.route, backend="aot_eager", fullgraph=True)
    h = torch.randn(5, 8)
    torch.testing.assert_close(compiled(h).gates, router.route(h).gates)


def test_bad_k() -> None:
    with pytest.raises(ConfigError, match="k must be between 1 and num_experts=4"):
        create_router("topk", 8, 4, ["a"], k=5)
    with pytest.raises(ConfigError, match="k must be"):
        create_router("topk", 8, 4, ["a"], k=0)
