"""The training objective: weighted task losses plus the router's auxiliary losses.

A task spec ties a head task (``"inv"``, ``"eq"``) to a loss and a weight. The
objective reads each task's embeddings from the heads' :class:`~moeheads.heads.output.HeadOutput`,
so any invariant loss composes with any equivariant loss and any router, and it adds
the head output's auxiliary losses itself, so they cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from moeheads.errors import ConfigError
from moeheads.heads import HeadOutput
from moeheads.losses.base import LossOutput, TaskInputs, TaskLoss, create_loss


@dataclass
class TaskSpec:
    """One task of the objective.

    Attributes:
        loss: The task's loss.
        weight: Its weight in the total.
    """

    loss: TaskLoss
    weight: float = 1.0


class Objective(nn.Module):
    """``L = sum_t w_t * L_t + sum(aux losses)`` over the tasks of a head.

    Owns the losses (and so their parameters: predictors, psi and phi), so pass
    ``objective.parameters()`` to the optimiser along with the model's.

    Args:
        tasks: Task name -> :class:`TaskSpec`, a bare :class:`TaskLoss` (weight 1) or a
            ``(loss, weight)`` pair.

    Example:
        >>> import torch
        >>> from moeheads import MoEHeads
        >>> heads = MoEHeads.build(in_features=32, tasks=["inv", "eq"], num_experts=4)
        >>> objective = Objective.build({"inv": {"name": "vicreg"},
        ...                              "eq": {"name": "star_eq", "weight": 1.0}})
        >>> h_views, h_original = torch.randn(2, 8, 32), torch.randn(8, 32)
        >>> out = objective(heads(h_views), params=torch.randn(2, 8, 11),
        ...                 original=heads(h_original))
        >>> sorted(name for name in out.parts if "/" not in name)
        ['eq', 'inv']
    """

    def __init__(self, tasks: Mapping[str, TaskSpec | TaskLoss | tuple[TaskLoss, float]]) -> None:
        super().__init__()
        if not tasks:
            raise ConfigError("an objective needs at least one task")
        specs = {name: _as_spec(name, spec) for name, spec in tasks.items()}
        bad = [name for name in specs if not name or "." in name or "/" in name]
        if bad:
            raise ConfigError(f"task names must be non-empty without '.' or '/', got {bad}")
        self.losses = nn.ModuleDict({name: spec.loss for name, spec in specs.items()})
        self.weights = {name: float(spec.weight) for name, spec in specs.items()}

    @classmethod
    def build(cls, tasks: Mapping[str, Mapping[str, Any]]) -> Objective:
        """An objective from plain options: ``{task: {"name": loss, "weight": w, **options}}``.

        Raises:
            ConfigError: For an unknown loss or option, or a task without a loss name.
        """
        specs: dict[str, TaskSpec] = {}
        for task, options in tasks.items():
            options = dict(options)
            if "name" not in options:
                raise ConfigError(f"task {task!r}: missing option 'name' (the loss)")
            name, weight = options.pop("name"), options.pop("weight", 1.0)
            specs[task] = TaskSpec(create_loss(name, **options), weight)
        return cls(specs)

    @property
    def tasks(self) -> tuple[str, ...]:
        """Task names, in order."""
        return tuple(self.losses.keys())

    @property
    def inputs(self) -> frozenset[str]:
        """Every :class:`~moeheads.losses.base.TaskInputs` field some loss reads.

        The training engine computes the original image's embeddings, passes the
        backbone features or runs a momentum target network only when named here.
        """
        return frozenset().union(*(loss.inputs for loss in self.losses.values()))

    def forward(
        self,
        views: HeadOutput,
        params: Tensor | None = None,
        original: HeadOutput | None = None,
        features: Tensor | None = None,
        targets: HeadOutput | None = None,
    ) -> LossOutput:
        """The total loss and every part, weighted and unweighted.

        Args:
            views: Head output for the views' features ``[V, B, d]``.
            params: Standardised augmentation parameters ``[V, B, P]``.
            original: Head output for the original images' features ``[B, d]``.
            features: Backbone features of the views ``[V, B, d]`` (AugSelf).
            targets: Momentum target network's head output for the views (BYOL).

        Returns:
            ``loss`` and ``parts``: ``<task>`` (unweighted), ``<task>/weighted``,
            ``<task>/<part>`` (the loss's own parts) and ``aux/<name>`` (router
            auxiliary losses, already weighted by the router, summed over the head
            outputs given).
        """
        parts: dict[str, Tensor] = {}
        total: Tensor | float = 0.0
        for task, loss in self.losses.items():
            inputs = TaskInputs(
                views=_embedding(views, task, "views"),
                original=None if original is None else _embedding(original, task, "original"),
                params=params,
                features=features,
                targets=None if targets is None else _embedding(targets, task, "targets"),
            )
            out = loss.from_inputs(inputs)
            weighted = self.weights[task] * out.loss
            parts[task] = out.loss
            parts[f"{task}/weighted"] = weighted
            parts.update({f"{task}/{name}": value for name, value in out.parts.items()})
            total = total + weighted
        for head_output in (views, original):
            for name, value in ({} if head_output is None else head_output.aux_losses).items():
                key = f"aux/{name}"
                parts[key] = parts[key] + value if key in parts else value
                total = total + value
        assert isinstance(total, Tensor)
        return LossOutput(total, parts)

    def extra_repr(self) -> str:
        return f"weights={self.weights}"


def _as_spec(task: str, spec: TaskSpec | TaskLoss | tuple[TaskLoss, float]) -> TaskSpec:
    if isinstance(spec, TaskSpec):
        result = spec
    elif isinstance(spec, TaskLoss):
        result = TaskSpec(spec)
    elif isinstance(spec, tuple) and len(spec) == 2:
        result = TaskSpec(*spec)
    else:
        raise ConfigError(f"task {task!r}: expected a TaskSpec, TaskLoss or (loss, weight)")
    if not isinstance(result.loss, TaskLoss):
        raise ConfigError(f"task {task!r}: {type(result.loss).__name__} is not a TaskLoss")
    return result


def _embedding(output: HeadOutput, task: str, which: str) -> Tensor:
    try:
        return output.embeddings[task]
    except KeyError:
        raise ConfigError(
            f"objective task {task!r} is not a head task in {which} "
            f"(heads give {sorted(output.embeddings)})"
        ) from None
