"""The recipe's ``data`` and ``views`` sections."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from moeheads.recipe.component import STRICT, Component, validate_component
from moeheads.views.options import ViewOptions


class DataConfig(BaseModel):
    """Datasets and loading.

    Attributes:
        dataset: The pretraining dataset (``{name: stl10, root: data/stl10, split:
            train+unlabeled}``).
        probe_train: Labelled images the kNN monitor indexes (``None``: no monitor).
        probe_test: Labelled images the kNN monitor classifies.
        num_workers: DataLoader worker processes.
        pin_memory: Pin host memory (CUDA only).
    """

    model_config = STRICT

    dataset: Component
    probe_train: Component | None = None
    probe_test: Component | None = None
    num_workers: int = Field(4, ge=0)
    pin_memory: bool = True

    @field_validator("dataset", "probe_train", "probe_test")
    @classmethod
    def _known_dataset(cls, value: Component | None) -> Component | None:
        if value is not None:
            validate_component("datasets", value)
        return value

    @model_validator(mode="after")
    def _probe_pair(self) -> DataConfig:
        if (self.probe_train is None) != (self.probe_test is None):
            raise ValueError("probe_train and probe_test go together: give both or neither")
        return self


class ViewsConfig(ViewOptions):
    """The view distribution (every :class:`~moeheads.views.options.ViewOptions` field)
    plus how many views a sample has.

    Attributes:
        num_views: Views per image V (>= 2).
        original: Also produce the un-augmented original (needed by equivariant losses).
        pipeline: Where crops, resizes and flips run: ``workers`` (DataLoader
            processes, any dataset), ``device`` (a whole batch at once on the training
            device; in-memory datasets and JPEG files) or ``auto`` (``device`` on CUDA
            where the dataset allows it, else ``workers``). Both give the same views
            (see the views guide); not part of the recipe hash.
    """

    num_views: int = Field(2, ge=2)
    original: bool = True
    pipeline: Literal["workers", "device", "auto"] = "workers"

    def view_options(self) -> ViewOptions:
        """Only the distribution options."""
        return ViewOptions(**self.model_dump(exclude={"num_views", "original", "pipeline"}))
