"""The shipped sweep recipes expand into valid runs: the paper's comparisons and the CPU study."""

from __future__ import annotations

from pathlib import Path

import pytest

from moeheads.experiments.sweep import load_sweep
from moeheads.recipe.io import load_recipe
from moeheads.recipe.schema import Recipe

SWEEPS = Path(__file__).parents[2] / "recipes" / "sweeps"


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.yaml")), ids=lambda p: p.stem)
def test_sweep_recipe_expands_into_valid_runs(path: Path) -> None:
    plan = load_sweep(path)  # validates every run's recipe and evaluation stages
    assert plan.folder.name == path.stem and len(plan.runs) >= 12
    assert {r.seed for r in plan.runs} == {0, 1, 2}


def _by_setting(name: str) -> dict[str, Recipe]:
    plan = load_sweep(SWEEPS / f"{name}.yaml")
    return {r.setting: Recipe.model_validate(r.recipe) for r in plan.runs if r.seed == 0}


def test_stl10_methods_are_the_papers_four() -> None:
    runs = _by_setting("paper_methods_stl10")
    assert list(runs) == ["simclr", "equimod", "star_ss", "star"]
    for recipe in runs.values():
        assert recipe.backbone.name == "torchvision:resnet18" and recipe.views.size == 96
        assert recipe.trainer.epochs == 200 and recipe.trainer.batch_size == 256
    assert list(runs["simclr"].tasks) == ["inv"] and runs["simclr"].heads.num_experts == 1
    assert runs["equimod"].tasks["eq"].name == "equimod"
    assert runs["equimod"].heads.router.name == "hard" and runs["equimod"].heads.num_experts == 2
    assert runs["star_ss"].heads.router.name == "shared" and runs["star_ss"].heads.num_experts == 3
    assert runs["star"].heads.router.name == "star" and runs["star"].heads.num_experts == 16
    assert runs["star"].tasks["eq"].name == "star_eq"
    assert [s.protocol for s in runs["star"].evaluation] == ["linear", "cca", "routing"]


def test_stl10_expert_counts() -> None:
    runs = _by_setting("paper_experts_stl10")
    assert [r.heads.num_experts for r in runs.values()] == [2, 4, 8, 16]
    assert {r.heads.router.name for r in runs.values()} == {"star"}


def test_cpu_study_covers_every_method_and_a_random_init_baseline() -> None:
    runs = _by_setting("study_fashion_mnist")
    assert list(runs) == ["random_init", "simclr", "equimod", "star_ss", "star_2", "star_4",
                          "star_8", "star_16"]
    assert runs["random_init"].optimizer.lr == 1e-12 and runs["random_init"].trainer.epochs == 1
    assert [runs[f"star_{n}"].heads.num_experts for n in (2, 4, 8, 16)] == [2, 4, 8, 16]
    assert runs["star_2"].data.dataset.name == "fashion_mnist"


def _training(recipe: Recipe) -> str:
    """The hash of what trains, whatever the run's name and seed."""
    return recipe.model_copy(update={"name": "run", "seed": 0}).hash()


@pytest.mark.parametrize(("setting", "single"), [
    ("simclr", "simclr_stl10"), ("equimod", "equimod_stl10"), ("star_ss", "star_ss_stl10"),
    ("star", "star_stl10"),
])
def test_stl10_method_sweep_trains_what_the_single_recipes_train(setting: str,
                                                                 single: str) -> None:
    expected = load_recipe(SWEEPS.parent / f"{single}.yaml")
    assert _training(_by_setting("paper_methods_stl10")[setting]) == _training(expected)


def test_stl10_expert_sweep_trains_what_the_single_recipes_train() -> None:
    runs = list(_by_setting("paper_experts_stl10").values())
    for recipe, single in zip(runs, ["star_stl10_experts2", "star_stl10_experts4",
                                     "star_stl10_experts8", "star_stl10"], strict=True):
        assert _training(recipe) == _training(load_recipe(SWEEPS.parent / f"{single}.yaml"))
