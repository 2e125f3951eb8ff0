import copy

import pytest
import torch
from torch import nn

from moeheads import MoEHeads
from moeheads.rundir.model import Encoder


@pytest.mark.parametrize("passes", ["separate", "joint"])
def test_project_normalises_groups_as_configured(passes: str) -> None:
    torch.manual_seed(0)
    heads = MoEHeads.build(16, ["inv", "eq"], num_experts=3, router="star", out_features=8,
                           hidden_features=[12])
    encoder = Encoder(nn.Identity(), heads, passes).train()  # type: ignore[arg-type]
    reference = copy.deepcopy(heads)
    views = [torch.randn(6, 16) * scale for scale in (1.0, 3.0)]
    original = torch.randn(6, 16) + 2

    out_views, out_original = encoder.project(views, original)
    if passes == "separate":  # one batch of statistics per group, the original's too
        expected = torch.stack([reference(v).embeddings["eq"] for v in views])
    else:  # the views share one batch, the original has its own
        expected = reference(torch.stack(views)).embeddings["eq"]
    expected_original = reference(original).embeddings["eq"]
    assert out_original is not None
    torch.testing.assert_close(out_views.embeddings["eq"], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_original.embeddings["eq"], expected_original,
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(heads.experts.norms[0].running_mean,
                               reference.experts.norms[0].running_mean)
    assert encoder.project(views)[1] is None
