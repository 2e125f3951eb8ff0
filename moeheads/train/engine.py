"""The training loop: one engine for every recipe (CPU, one GPU, or torchrun)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from moeheads.assembly.model import BACKBONE_PREFIX
from moeheads.errors import (
    CheckpointError,
    InterruptedRunError,
    NonFiniteLossError,
)
from moeheads.recipe.schema import Recipe
from moeheads.rundir.changes import describe_changes
from moeheads.rundir.checkpoint import load_checkpoint
from moeheads.rundir.export import export_backbone
from moeheads.rundir.lock import RunLock
from moeheads.rundir.rng import restore_rng_state
from moeheads.runtime.distributed import DistContext, init_distributed
from moeheads.train.builder import TrainingParts, build_training, resolve_precision, wrap_network
from moeheads.train.loop import TrainLoop
from moeheads.train.optim import reapply_recipe, recipe_hyperparameters
from moeheads.train.start import StartPlan, nan_advice, plan_start, position, record_start

__all__ = [
    "InterruptedRunError",
    "NonFiniteLossError",
    "RunResult",
    "StartPlan",
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

    A run directory belongs to one recipe and one writer: it is locked while training
    writes to it, and resuming it with a recipe that trains differently is refused
    unless ``allow_recipe_change`` is given.

    Args:
        recipe: The validated recipe.
        resume: ``"auto"`` continues from the newest valid checkpoint (starting fresh when
            there is none), ``"never"`` starts fresh after moving an earlier run's files
            aside (to ``<name>.<time>``), or a checkpoint path to continue from.
        console: Where progress goes.
        allow_recipe_change: Continue from a checkpoint of a different recipe (changed
            learning rate, epochs, ...); the change is recorded in the run's metrics and
            the earlier recipe kept as ``recipe.step-<S>.yaml``.
        source: How the user named the recipe (a path), for the commands error messages
            suggest.
    """

    def __init__(self, recipe: Recipe, resume: str = "auto", console: Console | None = None,
                 *, allow_recipe_change: bool = False, source: str | None = None):
        self.recipe = recipe
        self.resume = resume
        self.console = console or Console()
        self.run_dir = recipe.run_dir
        self.allow_recipe_change = allow_recipe_change
        self.source = source or str(self.run_dir / "recipe.yaml")

    def run(self) -> RunResult:
        """Train for the recipe's epochs (or what remains of them) and export the backbone."""
        recipe, trainer = self.recipe, self.recipe.trainer
        configure_determinism(trainer.deterministic)  # before CUDA starts
        ctx = init_distributed(trainer.device, trainer.timeout_minutes)
        seed_everything(recipe.seed)
        created = ctx.is_main and not self.run_dir.exists()
        started = False
        try:
            with RunLock(self.run_dir) if ctx.is_main else contextlib.nullcontext() as lock:
                if lock is not None and lock.stale:
                    self._print(f"note: took over a stale lock of process {lock.stale.get('pid')}"
                                " (it no longer runs)")
                plan = self._shared_plan(ctx)
                parts = build_training(recipe, ctx)  # the same model on every rank
                seed_everything(rank_seed(recipe.seed, ctx.rank))  # its own noise and dropout
                start_epoch, start_step, global_step, tally = self._resume(parts, plan)
                if ctx.is_main:
                    record_start(recipe, plan, global_step, self._print)
                self._banner(parts, plan, start_epoch, start_step, global_step)
                ctx.barrier()
                started = True
                wrap_network(parts, trainer.compile)
                loop = TrainLoop(recipe, self.run_dir, self.console, parts)
                loop.resume_command = f"moeheads run {self.source} --resume auto"
                try:
                    metrics = loop.train(start_epoch, start_step, global_step, tally)
                except NonFiniteLossError as error:
                    advice = nan_advice(recipe, self.source)
                    raise NonFiniteLossError(f"{error}; {advice}") from None
                finally:
                    loop.log.close()  # the experiment loggers
                backbone = None
                if ctx.is_main:
                    backbone = self.run_dir / "backbone.safetensors"
                    export_backbone(self.run_dir, backbone, prefix=BACKBONE_PREFIX,
                                    architecture=recipe.backbone.name,
                                    feature_dim=parts.model.backbone.feature_dim,
                                    overwrite=True)
                    self._print(f"backbone exported to {backbone}")
                ctx.barrier()
        except BaseException:
            if created and not started:  # a failed start leaves no half-made run directory
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        return RunResult(self.run_dir, trainer.epochs, parts.total_steps, metrics, backbone)

    def _print(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)

    def _shared_plan(self, ctx: DistContext) -> StartPlan:
        """Rank 0's :func:`~moeheads.train.start.plan_start` on every rank (its error too, so
        no rank waits for a plan that never comes)."""
        shared = ctx.on_main(lambda: plan_start(self.recipe, self.resume,
                                                self.allow_recipe_change))
        assert isinstance(shared, StartPlan)
        return shared

    def _resume(self, parts: TrainingParts, plan: StartPlan
                ) -> tuple[int, int, int, dict[str, Any] | None]:
        """Epoch, step in that epoch and global step to start from (restoring a checkpoint),
        and the interrupted epoch's running sums."""
        ctx = parts.ctx
        if plan.checkpoint is None:
            return 0, 0, 0, None
        error: CheckpointError | None = None
        built = recipe_hyperparameters(parts.optimizer)
        base_lrs = list(parts.scheduler.base_lrs)
        try:
            loaded = load_checkpoint(plan.checkpoint, parts.model, parts.optimizer,
                                     parts.scheduler, parts.scaler, map_location=ctx.device)
        except CheckpointError as err:
            error = err
        if ctx.mean(float(error is not None)) > 0:  # every rank learns whether all loaded
            raise error or CheckpointError(
                f"another process could not load {plan.checkpoint}; every process must be "
                "able to read the run directory"
            )
        _restore_rank_rng(loaded.extra.get("rng_ranks"), ctx, self.recipe.seed, loaded.info.step)
        reapply_recipe(parts.optimizer, parts.scheduler, built, base_lrs)  # changes take effect
        global_step, epoch = loaded.info.step, loaded.info.epoch
        step_in_epoch = int(loaded.extra.get("step_in_epoch", 0))
        if step_in_epoch >= parts.data.steps_per_epoch:
            epoch, step_in_epoch = epoch + 1, 0
        tally = loaded.extra.get("epoch_tally") if step_in_epoch else None
        return epoch, step_in_epoch, global_step, tally

    def _banner(self, parts: TrainingParts, plan: StartPlan, epoch: int, step_in_epoch: int,
                global_step: int) -> None:
        if not parts.ctx.is_main:
            return
        where = f"on {parts.ctx.device} ({_PRECISION_NAMES[parts.dtype]}"
        if parts.ctx.distributed:
            where += f", {parts.ctx.world_size} processes"
        where += f"; views: {parts.data.pipeline} pipeline)"
        if plan.checkpoint is None:
            message = f"fresh start: {self.run_dir} {where}"
        elif global_step >= parts.total_steps:
            message = (f"already complete: {self.run_dir} trained all {self.recipe.trainer.epochs}"
                       " epochs; exporting the backbone again")
        else:
            at = position(global_step, epoch)
            message = f"resuming {self.run_dir} from {plan.checkpoint} ({at}) {where}"
        if plan.changes:
            message += f"; recipe changed: {describe_changes(plan.changes)}"
        self._print(message + (f"; {plan.note}" if plan.note else ""))

_PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def _restore_rank_rng(states: object, ctx: DistContext, seed: int, step: int) -> None:
    """Give this rank its own saved generator state (or, when the checkpoint has none for
    this number of processes, a seed of its own)."""
    if isinstance(states, list) and len(states) == ctx.world_size:
        restore_rng_state(states[ctx.rank])
    elif ctx.rank > 0:
        seed_everything(rank_seed(seed + step, ctx.rank))
