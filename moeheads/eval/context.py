"""What every evaluation stage shares: the trained model, datasets and cached features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Subset

from moeheads.assembly.build import build_dataset
from moeheads.errors import ConfigError
from moeheads.eval.loading import TrainedModel
from moeheads.numerics.features import EvalTransform, FeatureSet, extract_features
from moeheads.recipe.schema import Component

#: A dataset named alone (``cifar10``) or with options (``{name: folder, root: data/x}``).
DatasetRef = str | Component


class StageOptions(BaseModel):
    """Options every evaluation stage accepts.

    Attributes:
        batch_size: Images per backbone forward pass.
        num_workers: DataLoader worker processes.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    batch_size: int = Field(256, ge=1)
    num_workers: int = Field(0, ge=0)

    def check(self) -> None:
        """Checks beyond the fields' own, run before the model is loaded (none here)."""


def as_component(ref: DatasetRef, root: Path | None = None, split: str | None = None) -> Component:
    """``ref`` as a :class:`Component`, with ``root`` and ``split`` filled in where it has none."""
    component = Component(name=ref) if isinstance(ref, str) else ref
    options = dict(component.options)
    if root is not None:
        options.setdefault("root", str(root))
    if split is not None:
        options.setdefault("split", split)
    return Component(name=component.name, **options)


def evenly(length: int, count: int | None) -> list[int]:
    """``count`` indices spread evenly over ``range(length)`` (all of them when ``None``)."""
    if count is None or count >= length:
        return list(range(length))
    return [int(i * length / count) for i in range(count)]


class EvalContext:
    """A trained model, the device it runs on and a feature cache in ``<run>/eval/cache``.

    Args:
        trained: The model.
        device: Where the backbone and heads run.
    """

    def __init__(self, trained: TrainedModel, device: torch.device) -> None:
        self.trained = trained
        self.device = device
        self.recipe = trained.recipe
        self.eval_dir = trained.run_dir / "eval"
        #: File stem of the stage being run (``routing-cifar10``), for files it writes.
        self.stem = "eval"

    def dataset(self, component: Component, max_images: int | None = None) -> Any:
        """The dataset ``component`` names, limited to ``max_images`` evenly spread items."""
        dataset = build_dataset(component)
        indices = evenly(len(dataset), max_images)
        return dataset if len(indices) == len(dataset) else Subset(dataset, indices)

    def probe(self, which: str, protocol: str) -> Component:
        """The recipe's ``probe_train`` or ``probe_test`` dataset."""
        component = getattr(self.recipe.data, f"probe_{which}")
        if component is None:
            raise ConfigError(f"{protocol}: the recipe has no data.probe_{which}; name the data "
                              "with --set dataset=NAME root=DIR")
        return component

    def features(
        self, component: Component, options: StageOptions, max_images: int | None = None
    ) -> FeatureSet:
        """Backbone features of a dataset, extracted once and cached.

        Images are resized with the stage's ``interpolation`` option where it has one
        (bilinear otherwise) and normalised with the recipe's view statistics.
        """
        views = self.recipe.views
        interpolation = getattr(options, "interpolation", "bilinear")
        key = json.dumps({"dataset": component.model_dump(mode="json"), "max": max_images},
                         sort_keys=True, default=str)
        return extract_features(
            self.trained.backbone, self.dataset(component, max_images),
            batch_size=options.batch_size, device=self.device, num_workers=options.num_workers,
            transform=EvalTransform(views.size, interpolation), mean=views.mean, std=views.std,
            cache_dir=self.eval_dir / "cache", cache_key=key,
        )
