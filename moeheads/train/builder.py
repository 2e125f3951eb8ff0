"""Building the parts of a training run from its recipe, in a fixed order.

The order matters for reproducibility: the model is initialised right after the
global seed is set, before any other random number is drawn, so that a run and
its resumed continuation build the same objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from moeheads.assembly.build import build_dataset, build_model, image_size_of
from moeheads.assembly.model import PretrainModel
from moeheads.errors import ConfigError
from moeheads.recipe.schema import Recipe
from moeheads.runtime.distributed import DistContext
from moeheads.runtime.sync_batchnorm import convert_sync_batchnorm, holds_synced_batchnorm
from moeheads.train.optim import build_optimizer, build_schedule
from moeheads.train.sampler import EpochSampler
from moeheads.views import (
    DeviceViews,
    Photometric,
    ViewSampler,
    ViewsDataset,
    build_input_pipeline,
)


@dataclass
class DataParts:
    """The training data of one process.

    Attributes:
        views: The dataset of views (its epoch is set by the loop).
        sampler: Which indices this process reads in each epoch.
        loader: Batches of views.
        photometric: The on-device photometric part of the views.
        steps_per_epoch: Optimiser steps per epoch.
        pipeline: Which input pipeline makes the views (``workers``, ``device-memory`` or
            ``device-jpeg``).
    """

    views: ViewsDataset | DeviceViews
    sampler: EpochSampler
    loader: Iterable[Any]
    photometric: Photometric
    steps_per_epoch: int
    pipeline: str = "workers"


@dataclass
class TrainingParts:
    """Everything the training loop works with.

    Attributes:
        ctx: Device and process group.
        model: The pretraining model (unwrapped).
        network: What the loop calls: ``model``, or ``model`` under DDP.
        optimizer: The optimiser.
        scheduler: The per-step learning-rate schedule.
        scaler: The gradient scaler (enabled for fp16 only).
        dtype: The autocast dtype (``None``: fp32).
        data: The training data.
        total_steps: Optimiser steps of the whole run.
    """

    ctx: DistContext
    model: PretrainModel
    network: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    dtype: torch.dtype | None
    data: DataParts
    total_steps: int


def native_bf16(device: torch.device) -> bool:
    """Whether the CUDA ``device`` computes bf16 natively (compute capability 8.0 or later).

    ``torch.cuda.is_bf16_supported()`` also counts GPUs that only emulate bf16 (slowly).
    """
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch without the argument
        return torch.cuda.get_device_capability(device)[0] >= 8


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (``None`` for fp32).

    ``auto``: on CUDA, bf16 where the GPU computes it natively, else fp16 (trained with a
    gradient scaler); fp32 on other devices.
    """
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if native_bf16(device) else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("trainer.precision fp16 needs a CUDA device; use bf16 or fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def micro_batch_size(recipe: Recipe, world_size: int) -> int:
    """Images per process and forward pass: the batch split over accumulation and processes."""
    trainer = recipe.trainer
    per_step = trainer.batch_size // trainer.accumulate
    if trainer.batch_size % (trainer.accumulate * world_size):
        raise ConfigError(
            f"trainer.batch_size {trainer.batch_size} must be divisible by "
            f"accumulate x processes = {trainer.accumulate * world_size}"
        )
    return per_step // world_size


def build_data(recipe: Recipe, dataset: Any, model: PretrainModel, ctx: DistContext) -> DataParts:
    """Sampler, views and loader of the pretraining dataset for this process."""
    trainer = recipe.trainer
    micro_batch = micro_batch_size(recipe, ctx.world_size)
    sampler = EpochSampler(
        len(dataset), micro_batch * ctx.world_size, recipe.seed, ctx.rank, ctx.world_size,
        max_steps=None if trainer.steps_per_epoch is None
        else trainer.steps_per_epoch * trainer.accumulate,
    )
    steps_per_epoch = sampler.steps // trainer.accumulate
    if steps_per_epoch == 0:
        raise ConfigError("trainer.accumulate is larger than the batches of one epoch")
    view_sampler = ViewSampler(recipe.views.view_options())
    inputs = build_input_pipeline(
        dataset, view_sampler, num_views=recipe.views.num_views,
        original=recipe.views.original and model.needs_original, seed=recipe.seed,
        index_sampler=sampler, batch_size=micro_batch, device=ctx.device,
        pipeline=recipe.views.pipeline, num_workers=recipe.data.num_workers,
        pin_memory=recipe.data.pin_memory,
    )
    photometric = Photometric.from_options(view_sampler.options).to(ctx.device)
    return DataParts(inputs.views, sampler, inputs.loader, photometric, steps_per_epoch,
                     inputs.kind)


def build_training(recipe: Recipe, ctx: DistContext) -> TrainingParts:
    """Dataset, model, data pipeline and optimisation of a run, before any resume.

    The network is not yet compiled or wrapped in DDP (see :func:`wrap_network`), so
    that a checkpoint loads into the plain model.
    """
    trainer = recipe.trainer
    dataset = build_dataset(recipe.data.dataset)
    model = build_model(recipe, image_size_of(dataset)).to(ctx.device)
    encoders = [model.encoder] + ([model.target.target] if model.target is not None else [])
    if trainer.channels_last:
        for encoder in encoders:  # the momentum target sees the same images as the encoder
            encoder.backbone.to(memory_format=torch.channels_last)
    data = build_data(recipe, dataset, model, ctx)
    if ctx.distributed:
        synchronise_batchnorm(model, ctx.device)
    dtype = resolve_precision(trainer.precision, ctx.device)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=dtype == torch.float16)
    optimizer = build_optimizer(model, recipe.optimizer, trainer.batch_size,
                                grad_scaler=scaler.is_enabled())
    total_steps = trainer.epochs * data.steps_per_epoch
    scheduler = build_schedule(optimizer, recipe.schedule, total_steps, data.steps_per_epoch)
    return TrainingParts(ctx, model, model, optimizer, scheduler, scaler, dtype, data,
                         total_steps)


def synchronise_batchnorm(model: PretrainModel, device: torch.device) -> None:
    """Every BatchNorm that sees training batches synchronised across processes: the
    encoder's, the losses' (predictors) and the momentum target's."""
    model.encoder = convert_sync_batchnorm(model.encoder, device)
    model.objective = convert_sync_batchnorm(model.objective, device)
    if model.target is not None:
        model.target.target = convert_sync_batchnorm(model.target.target, device)


def compile_targets(model: PretrainModel) -> dict[str, nn.Module]:
    """The parts of ``model`` that ``trainer.compile`` compiles, by name.

    The hot parts are the backbone and the parts every head call runs (the expert bank
    and the router, :meth:`MoEHeads.forward_groups` included). A part that holds
    synchronised BatchNorm (several processes) is left eager: its all-reduce breaks the
    graph at every norm, so compiling gains little and has known failures under DDP.
    A ViT backbone (LayerNorm) and the router are still compiled then.
    """
    heads = model.encoder.heads
    parts = {"backbone": model.encoder.backbone, "experts": heads.experts,
             "router": heads.router}
    return {name: part for name, part in parts.items() if not holds_synced_batchnorm(part)}


def wrap_network(parts: TrainingParts, compile: bool) -> None:
    """Compile the model's hot parts (when asked) and wrap it in DDP across processes."""
    model, ctx = parts.model, parts.ctx
    if compile:
        for part in compile_targets(model).values():
            part.compile()
    if ctx.distributed:
        parts.network = nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
        )
