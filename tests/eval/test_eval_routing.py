"""Expert usage, roles and the usage heatmap."""

from pathlib import Path

import pytest
import torch

from moeheads.errors import ConfigError
from moeheads.eval.routing import expert_roles, expert_usage, plot_expert_usage


def test_roles_by_hand() -> None:
    # Expert 0: inv 0.6 vs eq 0.1 -> share 0.86 > 2/3, inv-specific.
    # Expert 1: inv 0.1 vs eq 0.5 -> share 0.83, eq-specific.
    # Expert 2: inv 0.3 vs eq 0.4 -> share 0.57, shared.
    # Expert 3: 0 for both tasks (below 1 / (10 * 4)), dead.
    usage = torch.tensor([[0.6, 0.1, 0.3, 0.0], [0.1, 0.5, 0.4, 0.0]])
    assert expert_roles(usage, ["inv", "eq"]) == ["inv", "eq", "shared", "dead"]
    # A stricter rule turns the 0.83 share into "shared".
    assert expert_roles(usage, ["inv", "eq"], specific_share=0.85)[1] == "shared"
    with pytest.raises(ConfigError):
        expert_roles(usage, ["inv", "eq"], specific_share=1.0)


def test_usage_from_gates_and_plot(tmp_path: Path) -> None:
    inv = torch.softmax(torch.randn(64, 4) + torch.tensor([3.0, 0, 0, 0]), dim=1)
    eq = torch.softmax(torch.randn(64, 4) + torch.tensor([0, 3.0, 0, 0]), dim=1)
    usage = expert_usage({"inv": inv, "eq": eq})
    assert usage.tasks == ["inv", "eq"] and usage.usage.shape == (2, 4)
    torch.testing.assert_close(usage.usage.sum(dim=1), torch.ones(2))
    assert usage.roles[:2] == ["inv", "eq"]
    assert sum(usage.counts().values()) == 4 and "inv|eq" in usage.stats.overlap
    path = plot_expert_usage(usage, tmp_path / "plots" / "usage.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
