"""Evaluation stages on held-out images: ``cca``, ``equivariance`` and ``routing``.

The images are the recipe's ``probe_test`` by default (``--set dataset=NAME`` picks
others). ``cca`` and ``routing`` read the trained heads; ``equivariance`` draws views
with the recipe's own view distribution and reads the backbone only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from moeheads.data import SyntheticShapes
from moeheads.errors import ConfigError
from moeheads.eval import PROTOCOLS
from moeheads.eval.context import DatasetRef, EvalContext, StageOptions, as_component
from moeheads.eval.equivariance import class_probe_accuracy, factor_r2, view_param_r2
from moeheads.eval.routing import expert_usage, plot_expert_usage
from moeheads.eval.stages import stage
from moeheads.heads import HeadOutput
from moeheads.numerics.cca import expert_task_cca, pairwise_expert_cca
from moeheads.numerics.redundancy import compare_prepared, pairwise_redundancy, prepare
from moeheads.recipe.schema import Component
from moeheads.views import Photometric, ViewSampler, ViewsDataset, collate_views


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
def _heads(ctx: EvalContext, protocol: str, features: Tensor) -> tuple[HeadOutput, Tensor]:
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
    out, experts = _heads(ctx, "cca", data.features)
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


class EquivarianceOptions(HeldOutOptions, PROTOCOLS.get("equivariance").options):  # type: ignore[misc]
    """``equivariance`` options.

    Attributes:
        num_views: Views drawn per image (the difference needs two).
    """

    num_views: int = Field(2, ge=1)


@torch.no_grad()
def view_features(ctx: EvalContext, dataset: Any, o: EquivarianceOptions) -> tuple[Tensor, Tensor]:
    """Backbone features ``[V, n, d]`` and parameters ``[V, n, 11]`` of views of ``dataset``."""
    sampler = ViewSampler(ctx.recipe.views.view_options())
    views = ViewsDataset(dataset, sampler, o.num_views, original=False, seed=o.seed)
    loader = DataLoader(views, batch_size=o.batch_size, num_workers=o.num_workers,
                        collate_fn=collate_views)
    photometric = Photometric.from_options(sampler.options).to(ctx.device)
    backbone = ctx.trained.backbone.eval()
    features, params = [], []
    for batch in loader:
        prepared = photometric.prepare(batch, ctx.device)
        features.append(torch.stack([backbone(v).flatten(1).float() for v in prepared.views]))
        params.append(prepared.params.float())
    return torch.cat(features, 1).cpu(), torch.cat(params, 1).cpu()


def _circular(turns: Tensor) -> Tensor:
    angle = 2 * math.pi * turns
    return torch.stack([angle.sin(), angle.cos()], dim=1)


def synthetic_scores(ctx: EvalContext, component: Component, o: EquivarianceOptions,
                     dataset: Any) -> dict[str, float]:
    """R^2 of synthetic_shapes' factors and the class probe accuracy, from original images."""
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    indices = list(dataset.indices) if isinstance(dataset, Subset) else list(range(len(base)))
    truth = base.factors(indices)
    data = ctx.features(component, o, o.max_images)
    factors = {"hue": _circular(truth["hue"]), "x": truth["x"], "y": truth["y"],
               "scale": truth["scale"], "rotation": _circular(truth["rotation"] / (2 * math.pi))}
    scores = factor_r2(data.features, factors, test_fraction=o.test_fraction, seed=o.seed)
    scores["class_accuracy"] = class_probe_accuracy(data.features, data.labels,
                                                    test_fraction=o.test_fraction, seed=o.seed)
    return scores


def _mean(values: dict[str, float]) -> float | None:
    finite = [v for v in values.values() if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


@stage("equivariance", EquivarianceOptions)
def run_equivariance(ctx: EvalContext, o: EquivarianceOptions) -> dict[str, Any]:
    """Held-out R^2 of each view parameter (absolute and two-view difference) from features;
    on synthetic_shapes also of the ground-truth factors, and the class probe accuracy."""
    component = held_out(ctx, o, "equivariance")
    dataset = ctx.dataset(component, o.max_images)
    features, params = view_features(ctx, dataset, o)
    result = view_param_r2(features, params, names=o.names, test_fraction=o.test_fraction,
                           seed=o.seed)
    summary = {"mean R2 absolute": _mean(result.absolute)}
    if result.difference:
        summary["mean R2 difference"] = _mean(result.difference)
    out: dict[str, Any] = {"summary": summary, "dataset": component.name,
                           "images": params.shape[1], "absolute": result.absolute,
                           "difference": result.difference}
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    if isinstance(base, SyntheticShapes):
        out["factors"] = synthetic_scores(ctx, component, o, dataset)
        summary.update({f"R2 {k}" if k != "class_accuracy" else k: v
                        for k, v in out["factors"].items()})
    return out


class RoutingOptions(HeldOutOptions, PROTOCOLS.get("routing").options):  # type: ignore[misc]
    """``routing`` options: held-out images plus ``specific_share``."""


@stage("routing", RoutingOptions)
def run_routing(ctx: EvalContext, o: RoutingOptions) -> dict[str, Any]:
    """Per-task expert usage, roles (shared, task-specific, dead) and a heatmap PNG."""
    component = held_out(ctx, o, "routing")
    data = ctx.features(component, o, o.max_images)
    out, _ = _heads(ctx, "routing", data.features)
    usage = expert_usage(out.gates, specific_share=o.specific_share)
    plot = plot_expert_usage(usage, ctx.eval_dir / f"{ctx.stem}.png",
                             title=f"Expert usage, {component.name}")
    counts = usage.counts()
    summary: dict[str, float] = {f"experts {role}": counts.get(role, 0)
                                 for role in ("shared", *usage.tasks, "dead")}
    summary.update({f"entropy {t}": v for t, v in usage.stats.entropy.items()})
    return {"summary": summary, "dataset": component.name, "images": len(data.labels),
            "tasks": usage.tasks, "usage": usage.usage, "roles": usage.roles,
            "stats": usage.stats.as_dict(), "plot": plot.name}
