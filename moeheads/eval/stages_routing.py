"""The ``routing`` stage: per-task expert usage and roles, and what each expert's nearest
neighbours share (class or view parameters), with the neighbour figure."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from moeheads.eval import PROTOCOLS
from moeheads.eval.context import EvalContext
from moeheads.eval.equivariance import VIEW_PARAM_NAMES
from moeheads.eval.neighbour_figure import plot_expert_neighbours
from moeheads.eval.routing import ExpertUsage, expert_usage, plot_expert_usage
from moeheads.eval.stages import stage
from moeheads.eval.stages_heldout import HeldOutOptions, finite_mean, heads_on, held_out
from moeheads.eval.view_features import photometric_of, view_features, views_of
from moeheads.numerics.neighbours import ExpertNeighbours, expert_neighbours
from moeheads.views import collate_views

#: View parameters grouped as the paper's figure contrasts them.
PARAM_GROUPS = {
    "colour": ("brightness", "contrast", "saturation", "hue", "grayscale"),
    "geometry": ("crop_top", "crop_left", "crop_height", "crop_width", "flip"),
}


class RoutingOptions(HeldOutOptions, PROTOCOLS.get("routing").options):  # type: ignore[misc]
    """``routing`` options: held-out images plus ``specific_share``.

    Attributes:
        neighbours: Nearest neighbours per view in the per-expert retrieval (0: skip it).
        queries: Query views in the neighbour figure.
        seed: Seed of the views and of the figure's queries.
    """

    neighbours: int = Field(20, ge=0)
    queries: int = Field(3, ge=1)
    seed: int = 0


def _group_r2(r2: Tensor) -> dict[str, float]:
    """Mean neighbour R^2 of each parameter group (parameters that vary only)."""
    out = {}
    for group, names in PARAM_GROUPS.items():
        mean = finite_mean(float(r2[VIEW_PARAM_NAMES.index(n)]) for n in names)
        out[group] = float("nan") if mean is None else mean
    return out


def retrieval_rows(found: ExpertNeighbours, usage: ExpertUsage) -> list[dict[str, Any]]:
    """One row per expert: role, kNN accuracy and neighbour R^2 per parameter group."""
    return [{"expert": n, "role": usage.roles[n], "knn_accuracy": float(found.knn_accuracy[n]),
             **{f"r2_{g}": v for g, v in _group_r2(found.param_r2[n]).items()}}
            for n in range(len(usage.roles))]


def role_means(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Summary: the per-expert scores averaged over the experts of each role."""
    out: dict[str, float] = {}
    for role in dict.fromkeys(r["role"] for r in rows):
        mine = [r for r in rows if r["role"] == role]
        for key in ("knn_accuracy", *(f"r2_{g}" for g in PARAM_GROUPS)):
            out[f"{role} experts {key}"] = finite_mean(r[key] for r in mine)
    return out


@torch.no_grad()
def figure_images(ctx: EvalContext, dataset: Any, seed: int,
                  indices: list[int]) -> dict[int, Tensor]:
    """The views ``indices`` (as the model saw them) in [0, 1] for the figure."""
    views = views_of(ctx, dataset, 1, seed)
    photometric = photometric_of(ctx)
    prepared = photometric.prepare(collate_views([views[i] for i in indices]), ctx.device)
    shown = (prepared.views[0] * photometric.std + photometric.mean).clamp(0, 1).cpu()
    return dict(zip(indices, shown, strict=True))


def expert_retrieval(ctx: EvalContext, o: RoutingOptions, dataset: Any,
                     usage: ExpertUsage) -> dict[str, Any]:
    """Per-expert neighbour scores on one view per held-out image, and the figure."""
    data = view_features(ctx, dataset, num_views=1, seed=o.seed, batch_size=o.batch_size,
                         num_workers=o.num_workers)
    _, experts = heads_on(ctx, "routing", data.views[0])
    k = min(o.neighbours, data.views.shape[1] - 1)
    found = expert_neighbours(experts.float().cpu(), data.labels, data.params[0], k=k)
    rows = retrieval_rows(found, usage)
    generator = torch.Generator().manual_seed(o.seed)
    queries = torch.randperm(data.views.shape[1], generator=generator)[:o.queries].tolist()
    shown = min(5, k)
    needed = sorted({*queries, *found.neighbours[:, queries, :shown].flatten().tolist()})
    plot = plot_expert_neighbours(figure_images(ctx, dataset, o.seed, needed), found.neighbours,
                                  usage.roles, usage.tasks, queries,
                                  ctx.eval_dir / f"{ctx.stem}-neighbours.png", shown=shown)
    return {"k": k, "experts": rows, "summary": role_means(rows), "figure": plot.name}


@stage("routing", RoutingOptions)
def run_routing(ctx: EvalContext, o: RoutingOptions) -> dict[str, Any]:
    """Per-task expert usage, roles (shared, task-specific, dead) and a heatmap PNG; each
    expert's neighbour kNN accuracy and view-parameter R^2, and the neighbour figure."""
    component = held_out(ctx, o, "routing")
    data = ctx.features(component, o, o.max_images)
    out, _ = heads_on(ctx, "routing", data.features)
    usage = expert_usage(out.gates, specific_share=o.specific_share)
    plot = plot_expert_usage(usage, ctx.eval_dir / f"{ctx.stem}.png",
                             title=f"Expert usage, {component.name}")
    counts = usage.counts()
    summary: dict[str, Any] = {f"experts {role}": counts.get(role, 0)
                               for role in ("shared", *usage.tasks, "dead")}
    summary.update({f"entropy {t}": v for t, v in usage.stats.entropy.items()})
    record = {"summary": summary, "dataset": component.name, "images": len(data.labels),
              "tasks": usage.tasks, "usage": usage.usage, "roles": usage.roles,
              "stats": usage.stats.as_dict(), "plot": plot.name}
    if o.neighbours > 0:
        retrieval = expert_retrieval(ctx, o, ctx.dataset(component, o.max_images), usage)
        summary.update(retrieval.pop("summary"))
        record["retrieval"] = retrieval
        record["figures"] = [retrieval["figure"]]
    return record
