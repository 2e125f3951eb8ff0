"""The training loop: one engine for every recipe (CPU, one GPU, or torchrun)."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from moeheads.config import Recipe
from moeheads.errors import ConfigError
from moeheads.recipe_io import dump_recipe
from moeheads.train.allocator import keep_cpu_buffers
from moeheads.train.build import build_dataset, build_model, image_size_of
from moeheads.train.checkpoint import latest_valid_checkpoint, load_checkpoint
from moeheads.train.distributed import DistContext, init_distributed
from moeheads.train.export import export_backbone
from moeheads.train.loop import InterruptedRunError, NonFiniteLossError, TrainLoop
from moeheads.train.optim import build_optimizer, build_schedule
from moeheads.train.sampler import EpochSampler
from moeheads.train.sync_batchnorm import convert_sync_batchnorm
from moeheads.views import Photometric, ViewSampler, build_input_pipeline

__all__ = [
    "InterruptedRunError",
    "NonFiniteLossError",
    "RunResult",
    "Trainer",
    "resolve_precision",
    "seed_everything",
]


@dataclass
class RunResult:
    """What a finished run leaves behind.

    Attributes:
        run_dir: The run directory.
        epochs: Epochs completed.
        steps: Optimiser steps taken.
        final_metrics: The last epoch's metrics.
        backbone: The exported backbone weights.
    """

    run_dir: Path
    epochs: int
    steps: int
    final_metrics: dict[str, Any]
    backbone: Path | None


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (``None`` for fp32)."""
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("trainer.precision fp16 needs a CUDA device; use bf16 or fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (when installed) and torch."""
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy

        numpy.random.seed(seed % 2**32)


class Trainer:
    """Runs a recipe: pretraining with monitoring, checkpoints and resume, then export.

    Args:
        recipe: The validated recipe.
        resume: ``"auto"`` continues from the newest valid checkpoint of the same
            recipe (starting fresh when there is none), ``"never"`` refuses to touch
            a run directory that already holds checkpoints, or a checkpoint path.
        console: Where progress goes.
    """

    def __init__(self, recipe: Recipe, resume: str = "auto", console: Console | None = None):
        self.recipe = recipe
        self.resume = resume
        self.console = console or Console()
        self.run_dir = recipe.run_dir

    def run(self) -> RunResult:
        """Train for the recipe's epochs (or what remains of them) and export the backbone."""
        recipe, trainer = self.recipe, self.recipe.trainer
        ctx = init_distributed(trainer.device)
        if ctx.device.type == "cpu":
            keep_cpu_buffers()
        seed_everything(recipe.seed)
        if trainer.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if ctx.is_main:
            self._prepare_run_dir()
        ctx.barrier()

        dataset = build_dataset(recipe.data.dataset)
        model = build_model(recipe, image_size_of(dataset)).to(ctx.device)
        if trainer.channels_last:
            model.encoder.backbone.to(memory_format=torch.channels_last)
        micro_batch = self._micro_batch(ctx)
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
        loader, views = inputs.loader, inputs.views
        if ctx.is_main:
            self.console.print(f"views: {inputs.kind} pipeline", highlight=False)
        photometric = Photometric.from_options(view_sampler.options).to(ctx.device)

        if ctx.distributed:
            model.encoder = convert_sync_batchnorm(model.encoder, ctx.device)
            model.objective = convert_sync_batchnorm(model.objective, ctx.device)
        optimizer = build_optimizer(model, recipe.optimizer, trainer.batch_size)
        total_steps = trainer.epochs * steps_per_epoch
        scheduler = build_schedule(optimizer, recipe.schedule, total_steps, steps_per_epoch)
        dtype = resolve_precision(trainer.precision, ctx.device)
        scaler = torch.amp.GradScaler(ctx.device.type, enabled=dtype == torch.float16)

        start_epoch, start_step, global_step = self._resume(ctx, model, optimizer, scheduler,
                                                            scaler, steps_per_epoch)
        if trainer.compile:
            model.encoder.backbone.compile()
            # the parts every head call runs, MoEHeads.forward_groups included
            model.encoder.heads.experts.compile()
            model.encoder.heads.router.compile()
        network: nn.Module = model
        if ctx.distributed:
            network = DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            )
        loop = TrainLoop(self, ctx, model, network, optimizer, scheduler, scaler, dtype,
                     photometric, loader, views, sampler, steps_per_epoch, total_steps)
        metrics = loop.train(start_epoch, start_step, global_step)
        backbone = None
        if ctx.is_main:
            backbone = self.run_dir / "backbone.safetensors"
            export_backbone(self.run_dir, backbone, prefix="encoder.backbone.module.",
                            architecture=recipe.backbone.name,
                            feature_dim=model.backbone.feature_dim, overwrite=True)
            self.console.print(f"backbone exported to {backbone}", highlight=False)
        ctx.barrier()
        return RunResult(self.run_dir, trainer.epochs, total_steps, metrics, backbone)

    def _micro_batch(self, ctx: DistContext) -> int:
        trainer = self.recipe.trainer
        per_step = trainer.batch_size // trainer.accumulate
        if trainer.batch_size % (trainer.accumulate * ctx.world_size):
            raise ConfigError(
                f"trainer.batch_size {trainer.batch_size} must be divisible by "
                f"accumulate x processes = {trainer.accumulate * ctx.world_size}"
            )
        return per_step // ctx.world_size

    def _prepare_run_dir(self) -> None:
        checkpoints = self.run_dir / "checkpoints"
        if self.resume == "never" and checkpoints.is_dir() and any(checkpoints.iterdir()):
            raise ConfigError(
                f"{self.run_dir} already holds checkpoints; resume with --resume auto, or "
                "change name or output_dir"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        recipe_file = self.run_dir / "recipe.yaml"
        tmp = recipe_file.with_suffix(".yaml.tmp")
        tmp.write_text(dump_recipe(self.recipe))
        tmp.replace(recipe_file)

    def _resume(self, ctx, model, optimizer, scheduler, scaler, steps_per_epoch):
        if self.resume == "never":
            return 0, 0, 0
        if self.resume == "auto":
            info = latest_valid_checkpoint(self.run_dir, self.recipe.hash())
            if info is None:
                return 0, 0, 0
            path = info.path
        else:
            path = Path(self.resume)
        loaded = load_checkpoint(path, model, optimizer, scheduler, scaler,
                                 map_location=ctx.device, recipe_hash=self.recipe.hash())
        global_step = loaded.info.step
        epoch = loaded.info.epoch
        step_in_epoch = int(loaded.extra.get("step_in_epoch", 0))
        if step_in_epoch >= steps_per_epoch:
            epoch, step_in_epoch = epoch + 1, 0
        if ctx.is_main:
            self.console.print(f"resuming from {path} (epoch {epoch + 1}, step {global_step})",
                               highlight=False)
        return epoch, step_in_epoch, global_step
