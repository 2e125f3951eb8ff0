"""``--set`` overrides: suggestions for misspelt fields, replacing a whole component."""

from __future__ import annotations

from pathlib import Path

import pytest

from moeheads.errors import ConfigError
from moeheads.recipe.io import apply_overrides, load_recipe
from tests.train.recipes import tiny_recipe, write_recipe


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    return write_recipe(tmp_path / "tiny.yaml", tiny_recipe(tmp_path))


@pytest.mark.parametrize(("override", "message"), [
    ("trainer.epoch=1", "trainer.epoch (line 27): unknown field (did you mean 'epochs'?)"),
    ("heads.rooter={name: star}", "unknown field (did you mean 'router'?)"),
    ("views.num_view=3", "unknown option 'num_view' (did you mean 'num_views'?)"),
    ("tasks.inv.temprature=0.1", "unknown option 'temprature' (did you mean 'temperature'?)"),
    ("data.dataset.lenght=8", "unknown option 'lenght' (did you mean 'length'?)"),
])
def test_misspelt_fields_get_suggestions(recipe_file: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_recipe(recipe_file, [override])
    assert message.split("): ")[-1] in str(error.value)


def test_a_far_off_name_gets_no_suggestion(recipe_file: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_recipe(recipe_file, ["trainer.zzz=1"])
    assert "unknown field" in str(error.value) and "did you mean" not in str(error.value)


def test_setting_a_component_name_drops_the_old_options(recipe_file: Path) -> None:
    recipe = load_recipe(recipe_file, ["backbone.name=torchvision:resnet18"])
    assert recipe.backbone.name == "torchvision:resnet18" and recipe.backbone.options == {}
    recipe = load_recipe(recipe_file, ["tasks.inv.name=vicreg", "tasks.inv.invariance_weight=10"])
    assert recipe.tasks["inv"].name == "vicreg"
    assert recipe.tasks["inv"].options == {"invariance_weight": 10}


def test_the_same_name_keeps_the_options(recipe_file: Path) -> None:
    recipe = load_recipe(recipe_file, ["backbone.name=small_cnn"])
    assert recipe.backbone.options == {"width": 4, "depth": 2}


def test_a_whole_component_as_a_mapping(recipe_file: Path) -> None:
    recipe = load_recipe(recipe_file, ["backbone={name: small_cnn, width: 8}"])
    assert recipe.backbone.options == {"width": 8}


def test_the_recipe_name_is_not_a_component() -> None:
    data = apply_overrides({"name": "a", "seed": 1}, ["name=b"])
    assert data == {"name": "b", "seed": 1}
