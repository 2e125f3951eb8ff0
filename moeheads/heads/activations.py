"""The experts' activation functions by name."""

from __future__ import annotations

from typing import Literal

from torch import nn

#: The experts' activations by name: the one list recipes and Python calls both use.
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}

#: An activation name, as a type that pydantic (and a recipe) validates.
Activation = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
