"""The training loop: one engine for every recipe (CPU, one GPU, or torchrun)."""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from moeheads.config import Recipe
from moeheads.errors import (
    CheckpointError,
    ConfigError,
    InterruptedRunError,
    MoeheadsError,
    NonFiniteLossError,
)
from moeheads.recipe_io import dump_recipe
from moeheads.rundir.checkpoint import (
    latest_valid_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
)
from moeheads.rundir.distributed import DistContext, init_distributed
from moeheads.rundir.export import export_backbone
from moeheads.rundir.rng import restore_rng_state
from moeheads.train.allocator import keep_cpu_buffers
from moeheads.train.builder import TrainingParts, build_training, resolve_precision, wrap_network
from moeheads.train.loop import TrainLoop

__all__ = [
    "InterruptedRunError",
    "NonFiniteLossError",
    "RunResult",
    "Trainer",
    "configure_determinism",
    "rank_seed",
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


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s generators after the model is built.

    Rank 0 keeps ``seed`` (so one process trains as before); other ranks get distinct
    seeds, so router noise and dropout differ across processes.
    """
    return seed if rank == 0 else (seed + 1_000_003 * rank) % 2**63


def configure_determinism(deterministic: bool) -> None:
    """Deterministic algorithms, or the fastest ones; call before CUDA starts.

    Deterministic: sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS reads it when CUDA
    starts; without it deterministic matrix products fail), asks for deterministic
    algorithms (ops without one warn and stay non-deterministic) and turns cuDNN's
    benchmark off. Otherwise cuDNN benchmarks its algorithms for each input shape.
    """
    if deterministic:
        if "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                warnings.warn(
                    "CUDA started before CUBLAS_WORKSPACE_CONFIG was set: matrix products "
                    "may not be deterministic in this process (set it in the environment)",
                    stacklevel=2,
                )
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


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
        configure_determinism(trainer.deterministic)  # before CUDA starts
        ctx = init_distributed(trainer.device, trainer.timeout_minutes)
        if ctx.device.type == "cpu":
            keep_cpu_buffers()
        seed_everything(recipe.seed)
        if ctx.is_main:
            self._prepare_run_dir()
        ctx.barrier()

        parts = build_training(recipe, ctx)  # the same model on every rank
        seed_everything(rank_seed(recipe.seed, ctx.rank))  # its own noise and dropout
        start_epoch, start_step, global_step = self._resume(parts)
        wrap_network(parts, trainer.compile)
        loop = TrainLoop(recipe, self.run_dir, self.console, parts)
        metrics = loop.train(start_epoch, start_step, global_step)
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
        """Epoch, step in that epoch and global step to start from (restoring a checkpoint).

        Rank 0 chooses the checkpoint and every rank loads that one, so all start at
        the same step; each rank then restores its own generators' state.
        """
        ctx = parts.ctx
        if self.resume == "never":
            return 0, 0, 0
        path = self._choose_checkpoint(ctx)
        if path is None:
            return 0, 0, 0
        error: CheckpointError | None = None
        try:
            loaded = load_checkpoint(path, parts.model, parts.optimizer, parts.scheduler,
                                     parts.scaler, map_location=ctx.device,
                                     recipe_hash=self.recipe.hash())
        except CheckpointError as err:
            error = err
        if ctx.mean(float(error is not None)) > 0:  # every rank learns whether all loaded
            raise error or CheckpointError(
                f"another process could not load {path}; every process must be able to "
                "read the run directory"
            )
        _restore_rank_rng(loaded.extra.get("rng_ranks"), ctx, self.recipe.seed, loaded.info.step)
        global_step = loaded.info.step
        epoch = loaded.info.epoch
        step_in_epoch = int(loaded.extra.get("step_in_epoch", 0))
        if step_in_epoch >= parts.data.steps_per_epoch:
            epoch, step_in_epoch = epoch + 1, 0
        if ctx.is_main:
            self.console.print(f"resuming from {path} (epoch {epoch + 1}, step {global_step})",
                               highlight=False)
        return epoch, step_in_epoch, global_step

    def _choose_checkpoint(self, ctx: DistContext) -> Path | None:
        """The checkpoint to resume from, chosen by rank 0 and broadcast (``None``: fresh)."""
        choice: tuple[str, str | None] = ("ok", None)
        if ctx.is_main:
            try:
                if self.resume == "auto":
                    info = latest_valid_checkpoint(self.run_dir, self.recipe.hash())
                else:
                    info = resolve_checkpoint(self.resume, self.recipe.hash())
                choice = ("ok", None if info is None else str(info.path))
            except MoeheadsError as err:
                choice = ("error", str(err))
        status, value = ctx.broadcast_object(choice)  # type: ignore[misc]
        if status == "error":
            raise CheckpointError(value or "rank 0 could not choose a checkpoint")
        return None if value is None else Path(value)


def _restore_rank_rng(states: object, ctx: DistContext, seed: int, step: int) -> None:
    """Give this rank its own saved generator state (or, when the checkpoint has none for
    this number of processes, a seed of its own)."""
    if isinstance(states, list) and len(states) == ctx.world_size:
        restore_rng_state(states[ctx.rank])
    elif ctx.rank > 0:
        seed_everything(rank_seed(seed + step, ctx.rank))
