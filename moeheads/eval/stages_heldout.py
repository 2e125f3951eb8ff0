"""Held-out images for evaluation stages, and the ``cca`` stage.

The images are the recipe's ``probe_test`` by default (``--set dataset=NAME`` picks
others). ``cca`` and ``routing`` (:mod:`~moeheads.eval.stages_routing`) read the trained
heads; ``equivariance`` (:mod:`~moeheads.eval.stages_equivariance`) draws views with the
recipe's own view distribution.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from moeheads.errors import ConfigError
from moeheads.eval import PROTOCOLS
from moeheads.eval.context import DatasetRef, EvalContext, StageOptions, as_component
from moeheads.eval.stages import stage
from moeheads.heads import HeadOutput
from moeheads.numerics.cca import expert_task_cca, pairwise_expert_cca
from moeheads.numerics.redundancy import compare_prepared, pairwise_redundancy, prepare
from moeheads.recipe.schema import Component


def finite_mean(values: Iterable[float]) -> float | None:
    """The mean of the finite values (``None`` when there are none)."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


class HeldOutOptions(StageOptions):
    """Held-out images.

    Attributes:
        dataset: The images (the recipe's ``probe_test`` by default).
        root: The folder of ``dataset`` when it is given by name.
        split: The split of ``dataset`` (the dataset's default when omitted).
        max_images: Use at most this many images, evenly spread.
    """

    dataset: DatasetRef | None = None
    root: Path | None = None
    split: str | None = None
    max_images: int | None = Field(5000, ge=2)


def held_out(ctx: EvalContext, o: HeldOutOptions, protocol: str) -> Component:
    """The held-out dataset of a stage."""
    if o.dataset is None:
        return ctx.probe("test", protocol)
    return as_component(o.dataset, o.root, o.split)


@torch.no_grad()
def heads_on(ctx: EvalContext, protocol: str, features: Tensor) -> tuple[HeadOutput, Tensor]:
    heads = ctx.trained.heads(protocol)
    h = features.to(ctx.device)
    return heads(h), heads.experts(h)


class CCAOptions(HeldOutOptions, PROTOCOLS.get("cca").options):  # type: ignore[misc]
    """``cca`` options: held-out images, the estimators' options (``eps``, ``variance``,
    ``top_k``) and which embeddings.

    Attributes:
        embeddings: ``heads``: the first two tasks' embeddings (and each expert's mean
            CCA with them); ``experts``: also every pair of experts, by every estimator.
    """

    embeddings: Literal["heads", "experts"] = "heads"


@stage("cca", CCAOptions)
def run_cca(ctx: EvalContext, o: CCAOptions) -> dict[str, Any]:
    """Mean, SVCCA, PWCCA and top-k canonical correlation between the first two tasks'
    embeddings, with each expert's mean CCA with them."""
    component = held_out(ctx, o, "cca")
    data = ctx.features(component, o, o.max_images)
    out, experts = heads_on(ctx, "cca", data.features)
    tasks = list(out.embeddings)
    if len(tasks) < 2:
        raise ConfigError(f"cca needs two tasks; this run has only {tasks}")
    first, second = (prepare(out.embeddings[t].float(), eps=o.eps, variance=o.variance)
                     for t in tasks[:2])
    result = compare_prepared(first, second, top_k=o.top_k)
    summary: dict[str, Any] = result.summary()
    record: dict[str, Any] = {
        "summary": summary, "tasks": tasks[:2], "dataset": component.name,
        "images": result.images, "dims": list(result.dims),
        "svcca_dims": list(result.svcca_dims), "correlations": result.correlations,
        "per_expert": expert_task_cca(experts.float(), out.embeddings, eps=o.eps),
        "expert_pairs": pairwise_expert_cca(experts.float(), eps=o.eps),
    }
    if o.embeddings == "experts":
        sets = [prepare(e.float(), eps=o.eps, variance=o.variance) for e in experts]
        pairs = pairwise_redundancy(sets, top_k=o.top_k)
        record["expert_pairs_by_estimator"] = pairs
        off = ~torch.eye(len(sets), dtype=torch.bool)
        summary.update({f"expert pairs {name}": float(m[off].mean()) if len(sets) > 1 else None
                        for name, m in pairs.items()})
    return record
