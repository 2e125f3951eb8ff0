import copy

import pytest
import torch
from torch import nn

from moeheads.numerics.grouped_norm import grouped_batch_norm
from moeheads.runtime.sync_batchnorm import AllReduceBatchNorm

GROUPS, CHANNELS = 3, 5


def _norm(kind: type[nn.BatchNorm1d], momentum: float | None) -> nn.Module:
    norm = kind(CHANNELS, momentum=momentum)
    with torch.no_grad():  # non-trivial affine parameters and running statistics
        norm.weight.normal_()
        norm.bias.normal_()
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.5, 2.0)
        norm.num_batches_tracked.fill_(4)
    return norm


def _stack(groups: list[torch.Tensor], group_major: bool) -> torch.Tensor:
    """Groups ``[B, C]`` (or ``[B, C, L]``) side by side on the channel dimension."""
    if group_major:
        return torch.cat(groups, 1)
    return torch.stack(groups, 2).flatten(1, 2)


@pytest.mark.parametrize("kind", [nn.BatchNorm1d, AllReduceBatchNorm])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("group_major", [True, False])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_equals_the_groups_in_turn(
    kind: type[nn.BatchNorm1d], momentum: float | None, group_major: bool, mode: str
) -> None:
    grouped = _norm(kind, momentum).train(mode == "train")
    reference = copy.deepcopy(grouped)
    parts = [torch.randn(7, CHANNELS, 2) * (g + 1) + g for g in range(GROUPS)]
    x = _stack(parts, group_major).requires_grad_(True)
    parts_ref = [p.clone().requires_grad_(True) for p in parts]

    out = grouped_batch_norm(grouped, x, GROUPS, group_major)
    expected = _stack([reference(p) for p in parts_ref], group_major)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)

    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(x.grad, _stack([p.grad for p in parts_ref], group_major),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grouped.weight.grad, reference.weight.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grouped.bias.grad, reference.bias.grad, atol=1e-5, rtol=1e-5)
    # running statistics as after the groups in turn (unchanged in eval)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(grouped, name), getattr(reference, name))
    if mode == "train":
        assert int(grouped.num_batches_tracked) == 4 + GROUPS


def test_one_group_is_the_plain_norm() -> None:
    norm = _norm(nn.BatchNorm1d, 0.1)
    reference = copy.deepcopy(norm)
    x = torch.randn(6, CHANNELS)
    torch.testing.assert_close(grouped_batch_norm(norm, x, 1, True), reference(x))
    torch.testing.assert_close(norm.running_var, reference.running_var)


def test_without_running_statistics() -> None:
    norm = nn.BatchNorm1d(CHANNELS, track_running_stats=False)
    parts = [torch.randn(6, CHANNELS) + g for g in range(GROUPS)]
    out = grouped_batch_norm(norm, torch.cat(parts, 1), GROUPS, True)
    torch.testing.assert_close(out, torch.cat([norm(p) for p in parts], 1))
