"""The training loop: one engine for every recipe (CPU, one GPU, or torchrun)."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from moeheads.config import Recipe
from moeheads.errors import ConfigError, InterruptedRunError, NonFiniteLossError
from moeheads.recipe_io import dump_recipe
from moeheads.rundir.checkpoint import latest_valid_checkpoint, load_checkpoint
from moeheads.rundir.distributed import init_distributed
from moeheads.rundir.export import export_backbone
from moeheads.train.allocator import keep_cpu_buffers
from moeheads.train.builder import TrainingParts, build_training, resolve_precision, wrap_network
from moeheads.train.loop import TrainLoop

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

        parts = build_training(recipe, ctx)
        start_epoch, start_step, global_step = self._resume(parts)
        wrap_network(parts, trainer.compile)
        loop = TrainLoop(recipe, self.run_dir, self.console, parts)
        try:
            metrics = loop.train(start_epoch, start_step, global_step)
        finally:
            loop.log.close()
        backbone = None
        if ctx.is_main:
            backbone = self.run_dir / "backbone.safetensors"
            export_backbone(self.run_dir, backbone, prefix="encoder.backbone.module.",
                            architecture=recipe.backbone.name,
                            feature_dim=parts.model.backbone.feature_dim, overwrite=True)
            self.console.print(f"backbone exported to {backbone}", highlight=False)
        ctx.barrier()
        return RunResult(self.run_dir, trainer.epochs, parts.total_steps, metrics, backbone)

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

    def _resume(self, parts: TrainingParts) -> tuple[int, int, int]:
        """Epoch, step in that epoch and global step to start from (restoring a checkpoint)."""
        ctx = parts.ctx
        if self.resume == "never":
            return 0, 0, 0
        if self.resume == "auto":
            info = latest_valid_checkpoint(self.run_dir, self.recipe.hash())
            if info is None:
                return 0, 0, 0
            path = info.path
        else:
            path = Path(self.resume)
        loaded = load_checkpoint(path, parts.model, parts.optimizer, parts.scheduler,
                                 parts.scaler, map_location=ctx.device,
                                 recipe_hash=self.recipe.hash())
        global_step = loaded.info.step
        epoch = loaded.info.epoch
        step_in_epoch = int(loaded.extra.get("step_in_epoch", 0))
        if step_in_epoch >= parts.data.steps_per_epoch:
            epoch, step_in_epoch = epoch + 1, 0
        if ctx.is_main:
            self.console.print(f"resuming from {path} (epoch {epoch + 1}, step {global_step})",
                               highlight=False)
        return epoch, step_in_epoch, global_step
