"""The training loop: one engine for every recipe (CPU, one GPU, or torchrun)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import time
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
from moeheads.rundir.changes import changes_since, describe_changes
from moeheads.rundir.checkpoint import load_checkpoint, resolve_checkpoint, scan_checkpoints
from moeheads.rundir.distributed import DistContext, init_distributed
from moeheads.rundir.export import export_backbone
from moeheads.rundir.lock import LOCK_NAME, RunLock
from moeheads.rundir.metrics import MetricsLog
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


@dataclass(frozen=True)
class StartPlan:
    """Where a run starts, decided by rank 0 and shared with every process.

    Attributes:
        checkpoint: The sidecar to resume from (``None``: a fresh start).
        changes: Recipe fields changed since the checkpoint (resuming with
            ``allow_recipe_change``), ``field -> (old, new)``.
        note: A line for the start banner (e.g. where an earlier run was moved).
    """

    checkpoint: Path | None = None
    changes: dict[str, tuple[Any, Any]] | None = None
    note: str = ""


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
        self.source = source or "RECIPE"

    def run(self) -> RunResult:
        """Train for the recipe's epochs (or what remains of them) and export the backbone."""
        recipe, trainer = self.recipe, self.recipe.trainer
        configure_determinism(trainer.deterministic)  # before CUDA starts
        ctx = init_distributed(trainer.device, trainer.timeout_minutes)
        if ctx.device.type == "cpu":
            keep_cpu_buffers()
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
                    self._record_start(plan, global_step)
                self._banner(parts, plan, start_epoch, start_step, global_step)
                ctx.barrier()
                started = True
                wrap_network(parts, trainer.compile)
                loop = TrainLoop(recipe, self.run_dir, self.console, parts)
                try:
                    metrics = loop.train(start_epoch, start_step, global_step, tally)
                except NonFiniteLossError as error:
                    raise NonFiniteLossError(f"{error}; {self._nan_advice()}") from None
                finally:
                    loop.log.close()  # the experiment loggers
                backbone = None
                if ctx.is_main:
                    backbone = self.run_dir / "backbone.safetensors"
                    export_backbone(self.run_dir, backbone, prefix="encoder.backbone.module.",
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
        """Rank 0's :meth:`_plan` on every rank (its error too, so no rank waits for a
        plan that never comes)."""
        plan: StartPlan | MoeheadsError | None = None
        if ctx.is_main:
            try:
                plan = self._plan()
            except MoeheadsError as error:
                plan = error
        shared = ctx.broadcast_object(plan)
        if isinstance(shared, MoeheadsError):
            raise shared
        assert isinstance(shared, StartPlan)
        return shared

    def _plan(self) -> StartPlan:
        """Rank 0: fresh start, or which checkpoint to continue (see the class)."""
        if self.resume == "never":
            return StartPlan(note=self._move_aside())
        if self.resume == "auto":
            valid = scan_checkpoints(self.run_dir)[0] if self.run_dir.is_dir() else []
            if not valid:
                return StartPlan()
            info = valid[0]
        else:
            info = resolve_checkpoint(self.resume)
        if info.recipe_hash in (None, self.recipe.hash()):
            return StartPlan(info.path)
        changes = changes_since(info.path.parent.parent, self.recipe)
        if not self.allow_recipe_change:
            name = self.recipe.name
            raise ConfigError(
                f"{self.run_dir} holds a run of a different recipe ({describe_changes(changes)});"
                f" its checkpoints are kept. Give this run a new name (--set name={name}-2), "
                f"start over with --resume never (the earlier run is moved aside to "
                f"{name}.<time>), or continue its newest checkpoint with the changed recipe: "
                f"--resume {info.path} --allow-recipe-change"
            )
        return StartPlan(info.path, changes or {})

    def _move_aside(self) -> str:
        """Move an earlier run's files (all but the lock) to ``<name>.<time>``; the note."""
        entries = [e for e in self.run_dir.iterdir() if e.name != LOCK_NAME] \
            if self.run_dir.is_dir() else []
        if not entries:
            return ""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.run_dir.with_name(f"{self.run_dir.name}.{stamp}")
        suffix = 1
        while aside.exists():
            aside, suffix = aside.with_name(f"{self.run_dir.name}.{stamp}-{suffix}"), suffix + 1
        aside.mkdir()
        for entry in entries:
            entry.rename(aside / entry.name)
        return f"the earlier run was moved to {aside}"

    def _record_start(self, plan: StartPlan, global_step: int) -> None:
        """Rank 0: the recipe file, one metrics history up to the start, recipe changes."""
        recipe_file = self.run_dir / "recipe.yaml"
        if plan.changes is not None and recipe_file.is_file():
            recipe_file.replace(self.run_dir / f"recipe.step-{global_step}.yaml")
        tmp = recipe_file.with_suffix(".yaml.tmp")
        tmp.write_text(dump_recipe(self.recipe))
        tmp.replace(recipe_file)
        log = MetricsLog(self.run_dir / "metrics.jsonl",
                         report=lambda message: self._print(f"note: {message}"))
        dropped = log.rewind(global_step)
        if dropped:
            self._print(f"note: dropped {dropped} metrics records written after step "
                        f"{global_step} by the interrupted run")
        if plan.changes is not None:
            log.write("recipe_change", step=global_step, checkpoint=str(plan.checkpoint),
                      changes={k: list(v) for k, v in plan.changes.items()})

    def _resume(self, parts: TrainingParts, plan: StartPlan
                ) -> tuple[int, int, int, dict[str, Any] | None]:
        """Epoch, step in that epoch and global step to start from (restoring a checkpoint),
        and the interrupted epoch's running sums."""
        ctx = parts.ctx
        if plan.checkpoint is None:
            return 0, 0, 0, None
        error: CheckpointError | None = None
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
            message = (f"resuming {self.run_dir} from {plan.checkpoint} (epoch {epoch + 1}, "
                       f"step {global_step}) {where}")
        if plan.changes:
            message += f"; recipe changed: {describe_changes(plan.changes)}"
        self._print(message + (f"; {plan.note}" if plan.note else ""))

    def _nan_advice(self) -> str:
        """What to do after a non-finite loss: the newest valid checkpoint and a command."""
        lower = f"optimizer.lr={self.recipe.optimizer.lr / 10:g}"
        valid = scan_checkpoints(self.run_dir)[0] if self.run_dir.is_dir() else []
        if not valid:
            return (f"no checkpoint had been written yet; start again with a lower learning "
                    f"rate: moeheads run {self.source} --set {lower} --resume never")
        info = valid[0]
        return (f"the newest valid checkpoint is {info.path} (epoch {info.epoch}, step "
                f"{info.step}); continue from it with a lower learning rate: moeheads run "
                f"{self.source} --set {lower} --resume {info.path} --allow-recipe-change")


_PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def _restore_rank_rng(states: object, ctx: DistContext, seed: int, step: int) -> None:
    """Give this rank its own saved generator state (or, when the checkpoint has none for
    this number of processes, a seed of its own)."""
    if isinstance(states, list) and len(states) == ctx.world_size:
        restore_rng_state(states[ctx.rank])
    elif ctx.rank > 0:
        seed_everything(rank_seed(seed + step, ctx.rank))
