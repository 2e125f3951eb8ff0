"""The task-loss contract: what a loss receives and what it returns.

Every loss is an ``nn.Module`` that returns a :class:`LossOutput` (a scalar plus
named, unweighted parts for logging). Shapes use ``V`` views, ``B`` images,
``D`` embedding width, ``d`` backbone feature width and ``P`` augmentation
parameters per view (11 by default):

* an **invariant** loss is called ``loss(z1, z2)`` with two ``[B, D]`` embeddings
  of the same images (see :class:`~moeheads.losses.invariant.InvariantLoss`);
* an **equivariant** loss is called ``loss(z_views, z_original, params)`` with
  ``z_views[V, B, D]``, ``z_original[B, D]`` and standardised ``params[V, B, P]``;
* a **feature** loss (AugSelf) is called ``loss(h_views, params)`` with backbone
  features ``h_views[V, B, d]``.

The training objective does not need to know which is which: it packs everything a
step produced into :class:`TaskInputs` and calls :meth:`TaskLoss.from_inputs`, which
picks what the loss needs (:attr:`TaskLoss.inputs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from moeheads.errors import ConfigError, ShapeError
from moeheads.registry import Registry


@dataclass
class LossOutput:
    """What a loss (or the whole objective) returns.

    Attributes:
        loss: The scalar to minimise.
        parts: Named scalars for logging (for a single loss: its unweighted terms).
    """

    loss: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        """``{"loss": ..., **parts}`` as Python floats, for logging (reads the device)."""
        return {name: float(value) for name, value in self.detached().items()}

    def detached(self) -> dict[str, Tensor]:
        """``{"loss": ..., **parts}`` as detached scalar tensors on their device (no host read)."""
        values = {"loss": self.loss, **self.parts}
        return {name: value.detach() for name, value in values.items()}


def mean_outputs(outputs: Sequence[LossOutput]) -> LossOutput:
    """The mean of several outputs (loss and every part), e.g. over view pairs."""
    if len(outputs) == 1:
        return outputs[0]
    count = len(outputs)
    loss = torch.stack([out.loss for out in outputs]).sum() / count
    names = outputs[0].parts.keys()
    parts = {n: torch.stack([out.parts[n] for out in outputs]).sum() / count for n in names}
    return LossOutput(loss, parts)


@dataclass
class TaskInputs:
    """Everything one training step offers a task loss.

    Attributes:
        views: The task's embeddings of the views, ``[V, B, D]``.
        original: The task's embedding of the un-augmented image, ``[B, D]``.
        params: Standardised augmentation parameters of the views, ``[V, B, P]``.
        features: Backbone features of the views, ``[V, B, d]``.
        targets: The momentum target network's embeddings of the views, ``[V, B, D]``.
    """

    views: Tensor
    original: Tensor | None = None
    params: Tensor | None = None
    features: Tensor | None = None
    targets: Tensor | None = None

    def require(self, name: str, owner: str) -> Tensor:
        """The input ``name``, or a :class:`ConfigError` naming ``owner`` when it is missing."""
        value = getattr(self, name)
        if value is None:
            raise ConfigError(f"{owner} needs the {name!r} input, which the step did not provide")
        return value


class TaskLoss(nn.Module):
    """Base class of task losses.

    Subclasses implement ``forward`` with their natural signature (see the module
    docstring) and :meth:`from_inputs`, and declare the inputs they read.

    Attributes:
        inputs: Names of the :class:`TaskInputs` fields the loss reads.
        kind: ``"invariant"``, ``"equivariant"`` or ``"feature"``.
    """

    inputs: ClassVar[frozenset[str]] = frozenset({"views"})
    kind: ClassVar[str] = "invariant"

    def from_inputs(self, inputs: TaskInputs) -> LossOutput:
        """Compute the loss from a step's :class:`TaskInputs` (implemented by subclasses)."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        """Class name, used in error messages."""
        return type(self).__name__

    def as_tensor(self) -> TensorLoss:
        """This loss as a module that returns the scalar tensor alone (same parameters).

        Example:
            >>> loss = create_loss("ntxent", temperature=0.5).as_tensor()
            >>> value = loss(torch.randn(8, 16), torch.randn(8, 16))
            >>> value.shape, value.dtype
            (torch.Size([]), torch.float32)
        """
        return TensorLoss(self)


class TensorLoss(nn.Module):
    """A task loss that returns its scalar as a plain tensor, like ``torch.nn`` losses.

    Drop-in where a tensor-returning loss is expected (a Lightning ``training_step``,
    code written for lightly's losses); the named parts of
    [`LossOutput`][moeheads.losses.base.LossOutput] are dropped.

    Args:
        loss: The wrapped loss; its parameters (e.g. a predictor) stay trainable.
    """

    def __init__(self, loss: TaskLoss) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """The wrapped loss's scalar for the same arguments."""
        return self.loss(*args, **kwargs).loss


LOSSES: Registry[TaskLoss] = Registry("loss")
"""Registry of task losses: ``LOSSES.list()`` names them."""


def create_loss(name: str, **options: Any) -> TaskLoss:
    """Build the registered loss ``name`` after validating ``options``.

    Example:
        >>> create_loss("ntxent", temperature=0.5).temperature
        0.5
    """
    return LOSSES.create(name, **options)


def check_embeddings(z: Tensor, owner: str, dims: int, min_batch: int = 1) -> None:
    """Raise a :class:`ConfigError` unless ``z`` has ``dims`` dimensions and enough rows.

    The batch dimension is the second to last one.
    """
    if z.dim() != dims:
        shape = "[B, D]" if dims == 2 else "[V, B, D]"
        raise ShapeError(f"{owner} expects {shape} embeddings, got {list(z.shape)}")
    if z.shape[-2] < min_batch:
        raise ShapeError(
            f"{owner} needs a batch of at least {min_batch} images, got {z.shape[-2]}"
            + (" (a contrastive loss has no negatives in a batch of 1)" if min_batch == 2 else "")
        )


def check_same_shape(a: Tensor, b: Tensor, owner: str, names: tuple[str, str]) -> None:
    """Raise a :class:`ConfigError` when ``a`` and ``b`` differ in shape."""
    if a.shape != b.shape:
        raise ShapeError(
            f"{owner}: {names[0]} {list(a.shape)} and {names[1]} {list(b.shape)} differ in shape"
        )
