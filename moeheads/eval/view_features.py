"""Backbone features of held-out images and of views of them, with the views' parameters
and the images' labels: what the ``equivariance`` and ``routing`` stages read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from moeheads.eval.context import EvalContext
from moeheads.views import Photometric, ViewSampler, ViewsDataset, collate_views


@dataclass
class ViewFeatures:
    """Features of originals ``[n, d]`` and views ``[V, n, d]``, the views' parameters
    ``[V, n, 11]`` and the labels ``[n]`` (``None`` without labels)."""

    original: Tensor
    views: Tensor
    params: Tensor
    labels: Tensor | None


def views_of(ctx: EvalContext, dataset: Any, num_views: int, seed: int) -> ViewsDataset:
    """Views of ``dataset`` drawn with the recipe's view distribution (item ``i`` is the
    same views every time)."""
    sampler = ViewSampler(ctx.recipe.views.view_options())
    return ViewsDataset(dataset, sampler, num_views, original=True, seed=seed)


def photometric_of(ctx: EvalContext) -> Photometric:
    """The recipe's photometric step, on the evaluation device."""
    options = ViewSampler(ctx.recipe.views.view_options()).options
    return Photometric.from_options(options).to(ctx.device)


@torch.no_grad()
def view_features(ctx: EvalContext, dataset: Any, *, num_views: int, seed: int,
                  batch_size: int, num_workers: int = 0) -> ViewFeatures:
    """Backbone features of the originals and of ``num_views`` views of ``dataset``."""
    loader = DataLoader(views_of(ctx, dataset, num_views, seed), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=collate_views)
    photometric = photometric_of(ctx)
    backbone = ctx.trained.backbone.eval()
    originals, features, params, labels = [], [], [], []
    for batch in loader:
        prepared = photometric.prepare(batch, ctx.device)
        originals.append(backbone(prepared.original).flatten(1).float())
        features.append(torch.stack([backbone(v).flatten(1).float() for v in prepared.views]))
        params.append(prepared.params.float())
        if prepared.labels is not None:
            labels.append(prepared.labels)
    return ViewFeatures(torch.cat(originals).cpu(), torch.cat(features, 1).cpu(),
                        torch.cat(params, 1).cpu(),
                        torch.cat(labels).cpu() if labels else None)
