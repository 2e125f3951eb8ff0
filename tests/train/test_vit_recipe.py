"""The shipped ViT recipe runs: a CPU smoke step with the recipe scaled down."""

from pathlib import Path

from rich.console import Console

from moeheads.recipe.io import load_recipe
from moeheads.train.engine import Trainer

RECIPE = Path(__file__).parents[2] / "recipes" / "vit_stl10.yaml"


def test_vit_recipe_trains_a_step_on_cpu(tmp_path: Path) -> None:
    shapes = "{name: synthetic_shapes, length: 8, size: 32}"
    recipe = load_recipe(RECIPE, [
        f"output_dir={tmp_path}", f"data.dataset={shapes}", "data.probe_train=null",
        "data.probe_test=null", "data.num_workers=0", "views.size=32",
        "views.blur_kernel_size=3", "backbone.img_size=32", "backbone.depth=1",
        "heads.num_experts=2", "trainer.batch_size=4", "trainer.epochs=1",
        "trainer.steps_per_epoch=1", "trainer.precision=fp32", "trainer.device=cpu",
    ])
    assert recipe.backbone.name == "timm:vit_tiny_patch16_224"
    result = Trainer(recipe, resume="never", console=Console(quiet=True)).run()
    assert result.steps == 1 and result.backbone is not None and result.backbone.exists()
