"""What every recipe section shares: strict models, and components named by a registry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from moeheads.errors import ConfigError
from moeheads.registry import registry_for

#: Model configuration of every recipe section: unknown keys and NaN/inf are errors.
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class Component(BaseModel):
    """A registered component by ``name`` plus its options (any other keys)."""

    model_config = ConfigDict(extra="allow")

    name: str

    @property
    def options(self) -> dict[str, Any]:
        """The options, i.e. every key except ``name``."""
        return dict(self.model_extra or {})


def validate_component(kind: str, component: Component, provided: tuple[str, ...] = ()) -> None:
    """Validate a component's options against its registry (raises ``ValueError``)."""
    try:
        registry_for(kind).validate(component.name, component.options, provided)
    except ConfigError as error:
        raise ValueError(str(error)) from None


def loss_inputs(name: str) -> frozenset[str]:
    """What the registered loss ``name`` reads (``views``, ``original``, ``params``, ...)."""
    return getattr(registry_for("losses").get(name).builder, "inputs", frozenset())
