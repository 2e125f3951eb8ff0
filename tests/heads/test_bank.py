import copy

import pytest
import torch
from torch import nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.heads import ExpertBank


def reference_experts(bank: ExpertBank) -> list[nn.Sequential]:
    """N independent experts built by hand (not via bank.expert) with the bank's weights."""
    experts = []
    for k in range(bank.num_experts):
        layers: list[nn.Module] = []
        for layer, weight in enumerate(bank.weights):
            last = layer == bank.num_layers - 1
            linear = nn.Linear(*weight.shape[1:], bias=last or not bank.batch_norm)
            with torch.no_grad():
                linear.weight.copy_(weight[k].T)
                if linear.bias is not None:
                    linear.bias.copy_((bank.biases[-1] if last else bank.biases[layer])[k])
            layers.append(linear)
            if not last:
                if bank.batch_norm:
                    layers.append(nn.BatchNorm1d(weight.shape[2]))
                layers.append(nn.ReLU())
        experts.append(nn.Sequential(*layers))
    return experts


@pytest.mark.parametrize("layout", ["row_major", "feature_major"])
@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_bank_equals_separate_experts(batch_norm: bool, mode: str, layout: str) -> None:
    bank = ExpertBank(num_experts=5, in_features=12, out_features=6, hidden_features=[10, 9],
                      batch_norm=batch_norm)
    bank.feature_major_min_rows = 0 if layout == "feature_major" else 10**9
    if batch_norm:  # non-trivial affine parameters and running statistics
        for norm in bank.norms:
            nn.init.normal_(norm.weight)
            nn.init.normal_(norm.bias)
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)
    experts = reference_experts(bank)
    if batch_norm:
        for k, expert in enumerate(experts):
            norms = [m for m in expert if isinstance(m, nn.BatchNorm1d)]
            for norm, big in zip(norms, bank.norms, strict=True):
                part = slice(k * norm.num_features, (k + 1) * norm.num_features)
                with torch.no_grad():
                    norm.weight.copy_(big.weight[part])
                    norm.bias.copy_(big.bias[part])
                    norm.running_mean.copy_(big.running_mean[part])
                    norm.running_var.copy_(big.running_var[part])
    bank.train(mode == "train")
    for expert in experts:
        expert.train(mode == "train")

    h = torch.randn(16, 12, requires_grad=True)
    h_ref = h.detach().clone().requires_grad_(True)
    out = bank(h)
    ref = torch.stack([expert(h_ref) for expert in experts])
    assert out.shape == (5, 16, 6)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)

    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    ref.backward(grad_out)
    torch.testing.assert_close(h.grad, h_ref.grad, atol=1e-5, rtol=1e-5)
    for k, expert in enumerate(experts):
        linears = [m for m in expert if isinstance(m, nn.Linear)]
        for layer, linear in enumerate(linears):
            torch.testing.assert_close(bank.weights[layer].grad[k], linear.weight.grad.T,
                                       atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(bank.biases[-1].grad[k], linears[-1].bias.grad,
                                   atol=1e-5, rtol=1e-5)
    if batch_norm and mode == "train":  # running statistics updated per expert
        for k, expert in enumerate(experts):
            norm = next(m for m in expert if isinstance(m, nn.BatchNorm1d))
            part = slice(k * 10, (k + 1) * 10)
            torch.testing.assert_close(bank.norms[0].running_mean[part], norm.running_mean)
            torch.testing.assert_close(bank.norms[0].running_var[part], norm.running_var)


def test_default_is_star_expert_shape() -> None:
    bank = ExpertBank(num_experts=16, in_features=512)
    assert [tuple(w.shape) for w in bank.weights] == [(16, 512, 512), (16, 512, 512),
                                                       (16, 512, 128)]
    assert [n.num_features for n in bank.norms] == [16 * 512, 16 * 512]
    assert [tuple(b.shape) for b in bank.biases] == [(16, 128)]  # hidden layers have no bias


def test_one_expert_single_layer_is_a_linear() -> None:
    bank = ExpertBank(num_experts=1, in_features=7, out_features=3, hidden_features=[])
    linear = nn.Linear(7, 3)
    with torch.no_grad():
        linear.weight.copy_(bank.weights[0][0].T)
        linear.bias.copy_(bank.biases[0][0])
    h = torch.randn(4, 7)
    torch.testing.assert_close(bank(h)[0], linear(h))


def test_one_expert_bank_equals_plain_mlp() -> None:
    bank = ExpertBank(num_experts=1, in_features=8, out_features=4, hidden_features=[6])
    mlp = bank.expert(0)
    assert [type(m) for m in mlp] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    h = torch.randn(10, 8)
    torch.testing.assert_close(bank(h)[0], mlp(h))


def test_export_and_load_round_trip() -> None:
    bank = ExpertBank(num_experts=3, in_features=8, out_features=4, hidden_features=[6, 5])
    bank.train()
    bank(torch.randn(32, 8))  # move running statistics away from their initial values
    bank.eval()
    exported = bank.experts()
    h = torch.randn(6, 8)
    for k, expert in enumerate(exported):
        torch.testing.assert_close(expert.eval()(h), bank(h)[k])
    copy = ExpertBank.from_experts(exported)
    copy.eval()
    torch.testing.assert_close(copy(h), bank(h))
    assert int(copy.norms[0].num_batches_tracked) == 1


def test_load_rejects_wrong_structure() -> None:
    bank = ExpertBank(num_experts=2, in_features=8, out_features=4, hidden_features=[6])
    with pytest.raises(ConfigError, match="expected 2 experts"):
        bank.load_experts([bank.expert(0)])
    other = ExpertBank(num_experts=2, in_features=8, out_features=4, hidden_features=[7])
    with pytest.raises(ShapeError, match="layer 0"):
        bank.load_experts(other.experts())


def test_bad_inputs() -> None:
    bank = ExpertBank(num_experts=2, in_features=8, out_features=4)
    with pytest.raises(ShapeError, match=r"expects features \[B, 8\]"):
        bank(torch.randn(3, 9))
    with pytest.raises(ShapeError, match=r"or groups \[G, B, 8\]"):
        bank(torch.randn(2, 3, 4, 8))
    with pytest.raises(ConfigError, match="num_experts"):
        ExpertBank(num_experts=0, in_features=8)
    with pytest.raises(ConfigError, match="activation"):
        ExpertBank(num_experts=1, in_features=8, activation="tanhh")
    with pytest.raises(ConfigError, match="expert index"):
        bank.expert(2)


def test_bf16_autocast_runs_on_cpu() -> None:
    bank = ExpertBank(num_experts=4, in_features=16, out_features=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = bank(torch.randn(5, 16))
        grouped = bank(torch.randn(3, 5, 16))
    assert out.shape == (4, 5, 8) and grouped.shape == (4, 3, 5, 8)
    assert out.dtype in (torch.bfloat16, torch.float32)
    assert bank.norms[0].running_mean.dtype == torch.float32
    assert int(bank.norms[0].num_batches_tracked) == 1 + 3


def test_layout_follows_the_row_count() -> None:
    bank = ExpertBank(num_experts=3, in_features=8, out_features=4, hidden_features=[6]).eval()
    bank.feature_major_min_rows = 20
    small, large = torch.randn(19, 8), torch.randn(20, 8)
    # both layouts give the same values on either side of the threshold
    for h in (small, large):
        reference = torch.stack([expert.eval()(h) for expert in bank.experts()])
        torch.testing.assert_close(bank(h), reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layout", ["row_major", "feature_major"])
@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_groups_equal_one_call_per_group(layout: str, batch_norm: bool, mode: str) -> None:
    torch.manual_seed(0)
    bank = ExpertBank(num_experts=4, in_features=10, out_features=6, hidden_features=[8, 7],
                      batch_norm=batch_norm)
    bank.feature_major_min_rows = 0 if layout == "feature_major" else 10**9
    bank.train(mode == "train")
    reference = copy.deepcopy(bank)
    # groups with different statistics, so one joint normalisation would differ
    h = torch.randn(3, 9, 10) * torch.tensor([1.0, 3.0, 0.5])[:, None, None]
    h = h.requires_grad_(True)
    h_ref = h.detach().clone().requires_grad_(True)
    for _ in range(2):  # the second step starts from updated running statistics
        out = bank(h)
        expected = torch.stack([reference(group) for group in h_ref], 1)
        assert out.shape == (4, 3, 9, 6)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        grad = torch.randn_like(out)
        out.backward(grad)
        expected.backward(grad)
    torch.testing.assert_close(h.grad, h_ref.grad, atol=1e-5, rtol=1e-5)
    for (name, param), ref in zip(bank.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(param.grad, ref.grad, atol=1e-4, rtol=1e-5, msg=name)
    for (name, buffer), ref in zip(bank.named_buffers(), reference.buffers(), strict=True):
        torch.testing.assert_close(buffer, ref, atol=1e-5, rtol=1e-5, msg=name)
    if batch_norm and mode == "train":
        joint = bank(h.detach().flatten(0, 1)).view_as(out)
        assert not torch.allclose(joint, out, atol=1e-3)  # the groups did need their own stats
