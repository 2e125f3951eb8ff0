"""The recipe's model sections: ``backbone``, ``heads`` and ``tasks``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from moeheads.backbones import check_backbone_options
from moeheads.errors import ConfigError
from moeheads.heads import MoEHeads
from moeheads.recipe.component import STRICT, Component, validate_component
from moeheads.registry import options_from_signature


class BackboneConfig(Component):
    """``name`` is ``torchvision:<model>``, ``timm:<model>``, ``small_cnn``, ...; other keys
    are the family's options. ``timm:`` and ``torchvision:`` pass any other key to the
    model (``{name: "timm:vit_tiny_patch16_224", img_size: 96, patch_size: 8}``), checked
    by building the model on the meta device."""

    @model_validator(mode="after")
    def _known_backbone(self) -> BackboneConfig:
        family, _, model = self.name.partition(":")
        options = {**self.options, **({"model": model} if model else {})}
        validate_component("backbones", Component(name=family, **options))
        try:
            check_backbone_options(family, options)
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return self


#: The options of :meth:`MoEHeads.build` that a recipe sets (the router comes as a component).
_HeadsOptions = options_from_signature(
    MoEHeads.build, "HeadsOptions", exclude=("in_features", "tasks", "router", "router_options")
)


class HeadsConfig(_HeadsOptions):  # type: ignore[misc,valid-type]
    """The expert bank and the router: the options of
    :meth:`~moeheads.heads.mixture.MoEHeads.build`, with the router as a component.

    Attributes:
        num_experts: Number of experts N.
        out_features: Embedding dimension of every task.
        hidden_features: Hidden widths of each expert (``None``: two of the feature width).
        batch_norm: BatchNorm after each hidden layer.
        activation: ``relu``, ``gelu`` or ``silu``.
        router: The routing strategy and its options.
    """

    model_config = STRICT

    router: Component = Field(default_factory=lambda: Component(name="star"))

    @field_validator("router")
    @classmethod
    def _known_router(cls, value: Component) -> Component:
        validate_component("routers", value, ("in_features", "num_experts", "tasks"))
        return value


class TaskConfig(Component):
    """A task's loss: ``name`` (the loss), ``weight`` and the loss's options."""

    weight: float = Field(1.0, ge=0.0)

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items() if k != "weight"}

    @model_validator(mode="after")
    def _known_loss(self) -> TaskConfig:
        validate_component("losses", Component(name=self.name, **self.options))
        return self
