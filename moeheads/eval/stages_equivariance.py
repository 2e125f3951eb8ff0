"""The ``equivariance`` stage: what backbone features keep of the views (R^2), and how well
an embedding's predictor follows the views (retrieval, prediction error).

Views are drawn with the recipe's own view distribution from held-out images.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field
from torch import Tensor
from torch.utils.data import Subset

from moeheads.data import SyntheticShapes
from moeheads.errors import ConfigError
from moeheads.eval import PROTOCOLS
from moeheads.eval.context import EvalContext
from moeheads.eval.equivariance import class_probe_accuracy, factor_r2, view_param_r2
from moeheads.eval.equivariance_measures import equivariance_scores
from moeheads.eval.stages import stage
from moeheads.eval.stages_heldout import HeldOutOptions, finite_mean, held_out
from moeheads.eval.view_features import ViewFeatures, view_features
from moeheads.recipe.schema import Component


class EquivarianceOptions(HeldOutOptions, PROTOCOLS.get("equivariance").options):  # type: ignore[misc]
    """``equivariance`` options.

    Attributes:
        num_views: Views drawn per image (the difference needs two).
        task: The embedding whose predictor is scored (the first equivariant task by
            default, else the first task).
        fit_fraction: Share of the images on which a predictor is fitted; the measures
            are taken on the rest.
        fit_epochs: Epochs of that fit.
    """

    num_views: int = Field(2, ge=1)
    task: str | None = None
    fit_fraction: float = Field(0.5, gt=0, lt=1)
    fit_epochs: int = Field(10, ge=1)


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


def scored_task(ctx: EvalContext, o: EquivarianceOptions) -> str:
    """The task whose embedding is scored: ``o.task``, else the first equivariant one."""
    objective = ctx.trained.model.objective  # type: ignore[union-attr]
    tasks = list(objective.losses)
    if o.task is not None:
        if o.task not in tasks:
            raise ConfigError(f"equivariance: task {o.task!r} is not one of this run's {tasks}")
        return o.task
    equivariant = [t for t in tasks if objective.losses[t].kind == "equivariant"]
    return (equivariant or tasks)[0]


@torch.no_grad()
def embedding_scores(ctx: EvalContext, data: ViewFeatures,
                     o: EquivarianceOptions) -> dict[str, Any]:
    """Retrieval and prediction error of no change, a fitted predictor and the run's own."""
    model = ctx.trained.model
    assert model is not None
    task = scored_task(ctx, o)
    heads = model.encoder.heads.eval()

    def embed(features: Tensor) -> Tensor:
        embeddings = heads(features.to(ctx.device)).embeddings
        if task not in embeddings:
            raise ConfigError(f"equivariance: task {task!r} has no head embedding (its loss "
                              f"reads backbone features); choose one of {list(embeddings)}")
        return embeddings[task].float().cpu()

    z = embed(data.original)
    views = torch.stack([embed(v) for v in data.views])
    params = model.standardizer(data.params.to(ctx.device)).float().cpu()
    loss = model.objective.losses[task]
    own = getattr(loss, "predictor", None)
    predictor = None
    if own is not None:
        own = own.eval()

        def predictor(zz: Tensor, pp: Tensor) -> Tensor:
            return own(zz.to(ctx.device), pp.to(ctx.device)).float().cpu()

    with torch.enable_grad():
        scores = equivariance_scores(z, views, params, own=predictor,
                                     fit_fraction=o.fit_fraction, seed=o.seed,
                                     fit_epochs=o.fit_epochs)
    return {"task": task, "scores": {k: vars(v) for k, v in scores.items()},
            "summary": {k: v for label, s in scores.items() for k, v in s.summary(label).items()}}


@stage("equivariance", EquivarianceOptions)
def run_equivariance(ctx: EvalContext, o: EquivarianceOptions) -> dict[str, Any]:
    """Held-out R^2 of each view parameter (absolute and two-view difference) from features;
    retrieval and prediction error of the embedding's predictor (runs with heads); on
    synthetic_shapes also R^2 of the ground-truth factors and the class probe accuracy."""
    component = held_out(ctx, o, "equivariance")
    dataset = ctx.dataset(component, o.max_images)
    data = view_features(ctx, dataset, num_views=o.num_views, seed=o.seed,
                         batch_size=o.batch_size, num_workers=o.num_workers)
    result = view_param_r2(data.views, data.params, names=o.names,
                           test_fraction=o.test_fraction, seed=o.seed)
    summary: dict[str, Any] = {"mean R2 absolute": finite_mean(result.absolute.values())}
    if result.difference:
        summary["mean R2 difference"] = finite_mean(result.difference.values())
    out: dict[str, Any] = {"summary": summary, "dataset": component.name,
                           "images": data.params.shape[1], "absolute": result.absolute,
                           "difference": result.difference}
    if ctx.trained.model is not None:
        measured = embedding_scores(ctx, data, o)
        summary.update(measured.pop("summary"))
        out["embedding"] = measured
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    if isinstance(base, SyntheticShapes):
        out["factors"] = synthetic_scores(ctx, component, o, dataset)
        summary.update({f"R2 {k}" if k != "class_accuracy" else k: v
                        for k, v in out["factors"].items()})
    return out
