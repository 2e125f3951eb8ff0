"""The paper recipes resolve to the authors' setup (GitHub YonseiML/star)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from moeheads.recipe.io import load_recipe
from moeheads.views.geometric import center_view

RECIPES = Path(__file__).parents[2] / "recipes"
STL10 = ["star_stl10", "equimod_stl10", "star_ss_stl10", "simclr_stl10", "augself_stl10",
         "star_stl10_experts2", "star_stl10_experts4", "star_stl10_experts8"]
PAPER = [*STL10, "star_imagenet100"]


@pytest.mark.parametrize("name", PAPER)
def test_views_and_backbone_are_the_authors(name: str) -> None:
    recipe = load_recipe(RECIPES / f"{name}.yaml")
    assert recipe.views.jitter == "kornia"
    assert recipe.backbone.options["conv_init"] == "pytorch"
    assert recipe.backbone.options["zero_init_residual"] is True
    if name in STL10:
        assert recipe.views.mean == (0.43, 0.42, 0.39)
        assert recipe.views.std == (0.27, 0.26, 0.27)
    else:
        assert recipe.views.mean == (0.485, 0.456, 0.406)
    eq = recipe.tasks.get("eq")
    if eq is not None:
        assert eq.options.get("predictor_norm", "per_view") == "per_view"
    assert recipe.trainer.backbone_passes == "separate"


def test_expert_count_ablation() -> None:
    counts = {load_recipe(RECIPES / f"star_stl10_experts{n}.yaml").heads.num_experts
              for n in (2, 4, 8)}
    assert counts | {load_recipe(RECIPES / "star_stl10.yaml").heads.num_experts} == {2, 4, 8, 16}


def test_augself_baseline() -> None:
    recipe = load_recipe(RECIPES / "augself_stl10.yaml")
    assert recipe.tasks["inv"].name == "ntxent" and recipe.tasks["aug"].name == "augself"
    options = recipe.tasks["aug"].options
    assert options["crop"] == 1.0 and options["color"] == 1.0


def test_stl10_original_view_is_the_unresized_image() -> None:
    """STL-10 images are 96 px: resize + centre crop at 96 px returns them unchanged."""
    image = torch.randint(0, 256, (3, 96, 96), dtype=torch.uint8)
    assert torch.equal(center_view(image, 96), image)


def test_validate_shows_the_authors_settings() -> None:
    from typer.testing import CliRunner

    from moeheads.cli import app

    result = CliRunner().invoke(app, ["validate", str(RECIPES / "star_stl10.yaml")])
    assert result.exit_code == 0, result.output
    for line in ("jitter: kornia", "conv_init: pytorch", "predictor_norm: per_view", "- 0.43"):
        assert line in result.output
