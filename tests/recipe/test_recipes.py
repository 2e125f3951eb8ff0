"""Every shipped recipe validates, and the STL-10 recipe is the paper's setup."""

from pathlib import Path

import pytest

from moeheads.assembly.check import check_recipe
from moeheads.recipe.io import load_recipe

RECIPES = sorted((Path(__file__).parents[2] / "recipes").glob("*.yaml"))


def test_all_recipes_are_shipped() -> None:
    names = {path.stem for path in RECIPES}
    assert {"quickstart", "star_stl10", "star_imagenet100", "equimod_stl10", "simclr_stl10",
            "star_ss_stl10", "star_vicreg_stl10", "star_fashion_mnist", "vit_stl10"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_validates(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    check_recipe(recipe)  # every component builds and one batch runs through the model


def test_star_stl10_matches_the_paper() -> None:
    recipe = load_recipe(Path(__file__).parents[2] / "recipes" / "star_stl10.yaml")
    assert recipe.backbone.name == "torchvision:resnet18" and recipe.views.size == 96
    assert recipe.heads.num_experts == 16 and recipe.heads.router.name == "star"
    assert recipe.heads.out_features == 128 and recipe.views.kernel_size == 9
    assert recipe.tasks["inv"].name == "ntxent" and recipe.tasks["eq"].name == "star_eq"
    assert recipe.tasks["inv"].options["temperature"] == 0.2
    assert recipe.optimizer.scaled_lr(recipe.trainer.batch_size) == pytest.approx(0.03)
    assert recipe.optimizer.weight_decay == 5e-4 and recipe.optimizer.decay_norm_and_bias
    assert recipe.trainer.epochs == 200 and recipe.trainer.batch_size == 256
    assert recipe.data.dataset.options["split"] == "train+unlabeled"


def test_imagenet100_is_four_gpus_global_256() -> None:
    recipe = load_recipe(Path(__file__).parents[2] / "recipes" / "star_imagenet100.yaml")
    assert recipe.backbone.name == "torchvision:resnet50" and recipe.heads.num_experts == 8
    assert recipe.trainer.batch_size == 256 and recipe.trainer.epochs == 500
    assert recipe.views.size == 224 and recipe.views.kernel_size == 23


@pytest.mark.parametrize("path", [p for p in RECIPES if "stl10" in p.stem or "imagenet" in p.stem],
                         ids=lambda p: p.stem)
def test_paper_recipes_make_views_on_the_gpu(path: Path) -> None:
    assert load_recipe(path).views.pipeline == "auto"
