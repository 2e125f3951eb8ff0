"""Building a run's parts from a :class:`~moeheads.recipe.schema.Recipe`."""

from __future__ import annotations

from typing import Any

from moeheads.assembly.model import Encoder, PretrainModel
from moeheads.assembly.objective import Objective
from moeheads.backbones import Backbone, create_backbone
from moeheads.data import create_dataset
from moeheads.data.base import ImageDataset
from moeheads.errors import ConfigError
from moeheads.heads import MoEHeads
from moeheads.losses import LOSSES
from moeheads.recipe.schema import Recipe, TaskConfig
from moeheads.views import NUM_PARAMS, ParamStandardizer, ViewSampler, to_image_tensor


def build_dataset(component: Any) -> ImageDataset:
    """The dataset a recipe component names."""
    return create_dataset(component.name, **component.options)


def build_backbone(recipe: Recipe) -> Backbone:
    """The recipe's backbone."""
    return create_backbone(recipe.backbone.name, **recipe.backbone.options)


def loss_options(task: TaskConfig, context: dict[str, int]) -> dict[str, Any]:
    """A task's loss options with the model's sizes filled in where the loss takes them.

    ``context`` maps option names (``embed_dim``, ``param_dim``, ``in_features``) to the
    sizes the model has; options the recipe sets itself are kept as given.
    """
    accepted = LOSSES.get(task.name).option_names()
    filled = {k: v for k, v in context.items() if k in accepted and k not in task.options}
    return {"name": task.name, "weight": task.weight, **filled, **task.options}


def image_size_of(dataset: ImageDataset) -> tuple[int, int]:
    """Height and width of the dataset's first image."""
    if len(dataset) == 0:
        raise ConfigError("the pretraining dataset is empty")
    image = to_image_tensor(dataset[0][0])
    return int(image.shape[-2]), int(image.shape[-1])


def build_heads(recipe: Recipe, feature_dim: int) -> MoEHeads:
    """The recipe's expert bank and router over features of width ``feature_dim``."""
    return MoEHeads.build(
        feature_dim,
        tasks=list(recipe.tasks),
        router=recipe.heads.router.name,
        router_options=recipe.heads.router.options,
        **recipe.heads.model_dump(exclude={"router"}),
    )


def build_objective(recipe: Recipe, feature_dim: int) -> Objective:
    """The recipe's task losses (with the model's sizes filled in), weighted and summed."""
    context = {
        "embed_dim": recipe.heads.out_features,
        "param_dim": NUM_PARAMS,
        "in_features": feature_dim,
    }
    return Objective.build(
        {name: loss_options(task, context) for name, task in recipe.tasks.items()}
    )


def build_model(recipe: Recipe, image_size: tuple[int, int],
                standardizer: ParamStandardizer | None = None) -> PretrainModel:
    """Backbone, heads, objective, parameter standardiser and (for BYOL) the target.

    The standardiser's statistics are estimated from the recipe's view sampler at
    ``image_size`` unless ``standardizer`` is given.
    """
    backbone = build_backbone(recipe)
    heads = build_heads(recipe, backbone.feature_dim)
    objective = build_objective(recipe, backbone.feature_dim)
    encoder = Encoder(backbone, heads, recipe.trainer.backbone_passes)
    if standardizer is None:
        sampler = ViewSampler(recipe.views.view_options())
        standardizer = ParamStandardizer.from_sampler(sampler, *image_size, seed=recipe.seed)
    target = None
    if "targets" in objective.inputs:
        owners = [loss for loss in objective.losses.values() if hasattr(loss, "make_target")]
        target = owners[0].make_target(encoder)
    return PretrainModel(encoder, objective, standardizer, target)
