import copy

import pytest
import torch
from torch import nn

from moeheads import MoEHeads
from moeheads.assembly.model import Encoder


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
    expected_original = reference(original).embeddings["eq"]  # the original goes first
    if passes == "separate":  # one batch of statistics per group, the original's too
        expected = torch.stack([reference(v).embeddings["eq"] for v in views])
    else:  # the views share one batch, the original has its own
        expected = reference(torch.stack(views)).embeddings["eq"]
    assert out_original is not None
    torch.testing.assert_close(out_views.embeddings["eq"], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_original.embeddings["eq"], expected_original,
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(heads.experts.norms[0].running_mean,
                               reference.experts.norms[0].running_mean)
    assert encoder.project(views)[1] is None


def test_running_statistics_follow_original_then_views() -> None:
    """One training forward updates BatchNorm running statistics as the authors' step
    does: backbone (and heads) on the original, then view 1, then view 2."""
    from moeheads.assembly.model import PretrainModel
    from moeheads.assembly.objective import Objective
    from moeheads.backbones import create_backbone
    from moeheads.views import ParamStandardizer, PreparedViews

    torch.manual_seed(0)
    backbone = create_backbone("small_cnn", width=4, depth=2)
    heads = MoEHeads.build(backbone.feature_dim, ["inv", "eq"], num_experts=2, router="star",
                           out_features=8, hidden_features=[8])
    objective = Objective.build({"inv": {"name": "ntxent"},
                                 "eq": {"name": "star_eq", "embed_dim": 8}})
    standardizer = ParamStandardizer(torch.zeros(11), torch.ones(11))
    model = PretrainModel(Encoder(backbone, heads), objective, standardizer).train()
    reference_backbone, reference_heads = copy.deepcopy(backbone), copy.deepcopy(heads)
    g = torch.Generator().manual_seed(1)
    original = torch.randn(6, 3, 16, 16, generator=g) + 1.0
    views = torch.randn(2, 6, 3, 16, 16, generator=g) * torch.tensor([0.5, 2.0]).view(2, 1, 1,
                                                                                       1, 1)
    model(PreparedViews(views=views, params=torch.rand(2, 6, 11), original=original))

    for images in (original, views[0], views[1]):  # the authors' order
        reference_heads(reference_backbone(images))
    for ours, theirs in ((backbone, reference_backbone), (heads, reference_heads)):
        ours_stats = {n: b for n, b in ours.named_buffers() if "running" in n}
        theirs_stats = dict(theirs.named_buffers())
        assert ours_stats
        for name, value in ours_stats.items():
            torch.testing.assert_close(value, theirs_stats[name], atol=1e-5, rtol=1e-4)
