"""Checking a recipe without data: every component is built (on the meta device, so no
memory is spent on weights), one step's shapes are run through the model, and embedded
datasets are measured. ``moeheads validate`` and ``moeheads run`` call it before anything
is written, so a recipe that would fail at build time fails here, naming the field."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TypeVar

import torch

from moeheads.assembly.build import (
    build_backbone,
    build_dataset,
    build_heads,
    build_model,
    loss_options,
)
from moeheads.data import DATASETS
from moeheads.errors import ConfigError, MoeheadsError
from moeheads.losses import create_loss
from moeheads.recipe.schema import Recipe
from moeheads.routers import create_router
from moeheads.views import NUM_PARAMS, ParamStandardizer, PreparedViews

T = TypeVar("T")


def _as_field(field: str, build: Callable[[], T]) -> T:
    """``build()``, with any failure turned into a :class:`ConfigError` naming ``field``."""
    try:
        return build()
    except MoeheadsError as error:
        raise ConfigError(f"{field}: {error}") from None
    except (ValueError, TypeError, IndexError, RuntimeError, KeyError) as error:
        raise ConfigError(f"{field}: cannot be built ({type(error).__name__}: {error})") from None


def _embedded(name: str) -> bool:
    """Whether dataset ``name`` needs no files (its factory says ``needs_files = False``), so
    measuring it reads no data."""
    return getattr(DATASETS.get(name).builder, "needs_files", True) is False


def check_data(recipe: Recipe) -> None:
    """Sizes of the datasets that need no files: not empty, and at least one batch."""
    for field in ("dataset", "probe_train", "probe_test"):
        component = getattr(recipe.data, field)
        if component is None or not _embedded(component.name):
            continue
        size = len(_as_field(f"data.{field}", lambda c=component: build_dataset(c)))
        if size < 2:
            raise ConfigError(f"data.{field}: {size} image(s); at least 2 are needed")
        if field == "dataset" and size < recipe.trainer.batch_size:
            raise ConfigError(
                f"trainer.batch_size {recipe.trainer.batch_size} is larger than "
                f"data.dataset's {size} images, so an epoch would have no step"
            )


def check_model(recipe: Recipe, batch: int = 2) -> None:
    """Build each component on the meta device (naming the first that fails), then run one
    small batch through the whole model on CPU weights set to one constant (no
    initialisation cost; only the shapes matter)."""
    size = recipe.views.size
    with torch.device("meta"):
        backbone = _as_field("backbone.name", lambda: build_backbone(recipe))
        _as_field("heads.router", lambda: create_router(
            recipe.heads.router.name, in_features=backbone.feature_dim,
            num_experts=recipe.heads.num_experts, tasks=list(recipe.tasks),
            **recipe.heads.router.options))
        _as_field("heads", lambda: build_heads(recipe, backbone.feature_dim))
        context = {"embed_dim": recipe.heads.out_features, "param_dim": NUM_PARAMS,
                   "in_features": backbone.feature_dim}
        for task, config in recipe.tasks.items():
            options = loss_options(config, context)
            options.pop("weight")
            _as_field(f"tasks.{task}", lambda o=options: create_loss(**o))
        identity = ParamStandardizer(torch.zeros(NUM_PARAMS), torch.ones(NUM_PARAMS))
        model = _as_field("(recipe)", lambda: build_model(recipe, (size, size), identity))
    model.to_empty(device="cpu")
    with torch.no_grad():  # empty memory can hold denormal floats, slow on the CPU (10x)
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.is_floating_point():
                tensor.fill_(0.01)
    views = recipe.views.num_views
    prepared = PreparedViews(torch.randn(views, batch, 3, size, size),
                             torch.randn(views, batch, NUM_PARAMS),
                             torch.randn(batch, 3, size, size))
    with torch.no_grad():
        _as_field("(recipe)", lambda: model(prepared))


def check_recipe(recipe: Recipe) -> None:
    """Everything about ``recipe`` that can be checked without reading data.

    Raises:
        ConfigError: Naming the field whose component cannot be built or run.
    """
    check_data(recipe)
    check_model(recipe)
