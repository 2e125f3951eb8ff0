"""The training loop: one engine for every recipe (CPU, one GPU, or torchrun)."""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from moeheads import __version__
from moeheads.config import Recipe
from moeheads.errors import ConfigError, MoeheadsError
from moeheads.recipe_io import dump_recipe
from moeheads.train.build import build_dataset, build_model, image_size_of
from moeheads.train.checkpoint import latest_valid_checkpoint, load_checkpoint, save_checkpoint
from moeheads.train.distributed import DistContext, init_distributed
from moeheads.train.export import export_backbone
from moeheads.train.model import PretrainModel
from moeheads.train.monitor import GateBuffer, probe_metrics
from moeheads.train.optim import build_optimizer, build_schedule
from moeheads.train.progress import MetricsLog, TrainProgress
from moeheads.train.sampler import EpochSampler
from moeheads.train.sync_batchnorm import convert_sync_batchnorm
from moeheads.views import Photometric, ViewSampler, ViewsDataset, collate_views


class NonFiniteLossError(MoeheadsError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class InterruptedRunError(MoeheadsError):
    """Training was interrupted (Ctrl-C) after a checkpoint was written."""


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
        views = ViewsDataset(dataset, view_sampler, recipe.views.num_views,
                             original=recipe.views.original and model.needs_original,
                             seed=recipe.seed)
        loader = DataLoader(
            views, batch_size=micro_batch, sampler=sampler, collate_fn=collate_views,
            num_workers=recipe.data.num_workers,
            pin_memory=recipe.data.pin_memory and ctx.device.type == "cuda",
            persistent_workers=recipe.data.num_workers > 0,
        )
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
            model.encoder.heads.compile()
        network: nn.Module = model
        if ctx.distributed:
            network = DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            )
        loop = _Loop(self, ctx, model, network, optimizer, scheduler, scaler, dtype,
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


class _Loop:
    """The epoch/step loop of one :class:`Trainer` run (state shared by its methods)."""

    def __init__(self, trainer: Trainer, ctx: DistContext, model: PretrainModel,
                 network: nn.Module, optimizer, scheduler, scaler, dtype, photometric,
                 loader, views: ViewsDataset, sampler: EpochSampler, steps_per_epoch: int,
                 total_steps: int) -> None:
        self.t = trainer
        self.recipe = trainer.recipe
        self.ctx = ctx
        self.model, self.network = model, network
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler
        self.dtype = dtype
        self.photometric = photometric
        self.loader, self.views, self.sampler = loader, views, sampler
        self.steps_per_epoch, self.total_steps = steps_per_epoch, total_steps
        self.log = MetricsLog(trainer.run_dir / "metrics.jsonl" if ctx.is_main else None)
        self.progress = TrainProgress(trainer.console, ctx.is_main, self.recipe.trainer.log_every)
        self.gates = GateBuffer()
        self.probe = None
        data = self.recipe.data
        if data.probe_train is not None and ctx.is_main:
            self.probe = (build_dataset(data.probe_train), build_dataset(data.probe_test))

    def train(self, start_epoch: int, start_step: int, global_step: int) -> dict[str, Any]:
        trainer = self.recipe.trainer
        self.global_step = global_step
        metrics: dict[str, Any] = {}
        for epoch in range(start_epoch, trainer.epochs):
            first = start_step if epoch == start_epoch else 0
            try:
                metrics = self._epoch(epoch, first)
            except KeyboardInterrupt:
                self.progress.end_epoch()
                self._save(epoch, self._step_in_epoch)
                raise InterruptedRunError(
                    f"interrupted at epoch {epoch + 1}, step {self.global_step}; checkpoint "
                    f"written, continue with: moeheads run RECIPE --resume auto"
                ) from None
            last = epoch + 1 == trainer.epochs
            if (epoch + 1) % trainer.checkpoint_every == 0 or last:
                self._save(epoch + 1, 0)
            self.ctx.barrier()
        return metrics

    def _epoch(self, epoch: int, first_step: int) -> dict[str, Any]:
        trainer = self.recipe.trainer
        self.sampler.set_epoch(epoch, first_step * trainer.accumulate)
        self.views.set_epoch(epoch)
        self.gates.clear()
        self.network.train()
        self._step_in_epoch = first_step
        sums: dict[str, float] = {}
        count = 0
        self.progress.start_epoch(epoch, trainer.epochs, self.steps_per_epoch, first_step)
        tic, images = time.perf_counter(), 0
        micro = 0
        for batch in self.loader:
            prepared = self.photometric.prepare(batch, self.ctx.device)
            if trainer.channels_last:
                prepared.views = prepared.views.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.ctx.device.type, dtype=self.dtype or torch.float32,
                                enabled=self.dtype is not None):
                out = self.network(prepared)
            loss = out.loss.loss
            self._check_finite(loss, epoch)
            self.scaler.scale(loss / trainer.accumulate).backward()
            images += prepared.views.shape[1] * self.ctx.world_size
            micro += 1
            if micro % trainer.accumulate:
                continue
            self._optimizer_step()
            scalars = out.loss.scalars()
            for name, value in scalars.items():
                sums[name] = sums.get(name, 0.0) + value
            count += 1
            self.gates.add(out.gates)
            lr = self.optimizer.param_groups[0]["lr"]
            rate = images / max(time.perf_counter() - tic, 1e-9)
            self.progress.step(self._step_in_epoch, scalars["loss"], rate, lr)
            if self.global_step % trainer.log_every == 0:
                self.log.write("step", epoch=epoch + 1, step=self.global_step, lr=lr,
                               images_per_s=rate, **scalars)
        self.progress.end_epoch()
        summary = {name: total / max(count, 1) for name, total in sums.items()}
        summary["images_per_s"] = images / max(time.perf_counter() - tic, 1e-9)
        summary.update(self._monitor(epoch))
        if self.ctx.is_main:
            routing = self.gates.stats() if self.recipe.monitor.routing else None
            self.log.write("epoch", epoch=epoch + 1, step=self.global_step, **summary,
                           routing=routing)
            shown = {k: v for k, v in summary.items() if "/" not in k}
            self.progress.print(f"epoch {epoch + 1}/{trainer.epochs}  " + "  ".join(
                f"{k} {v:.4g}" for k, v in shown.items()))
        return summary

    def _optimizer_step(self) -> None:
        trainer = self.recipe.trainer
        if trainer.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), trainer.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.model.target is not None:
            self.model.target.update(self.model.encoder, self.global_step, self.total_steps)
        self.global_step += 1
        self._step_in_epoch += 1

    def _check_finite(self, loss: torch.Tensor, epoch: int) -> None:
        finite = torch.isfinite(loss.detach()).float()
        if self.ctx.distributed:
            finite = torch.tensor(self.ctx.mean(float(finite)))
        if float(finite) < 1.0:
            raise NonFiniteLossError(
                f"the loss became {float(loss.detach())} at epoch {epoch + 1}, step "
                f"{self.global_step}; the last good checkpoint in {self.t.run_dir / 'checkpoints'}"
                " is intact (lower the learning rate or use fp32, then --resume auto)"
            )

    def _monitor(self, epoch: int) -> dict[str, float]:
        monitor = self.recipe.monitor
        out: dict[str, float] = {}
        if self.probe is not None:
            knn = monitor.knn_every and (epoch + 1) % monitor.knn_every == 0
            with_cca = monitor.cca_every and (epoch + 1) % monitor.cca_every == 0
            if knn or with_cca:
                views = self.recipe.views
                out = probe_metrics(
                    self.model, *self.probe, image_size=views.size, mean=views.mean,
                    std=views.std, device=self.ctx.device, knn_k=monitor.knn_k,
                    knn_temperature=monitor.knn_temperature, max_images=monitor.probe_images,
                    with_knn=bool(knn), with_cca=bool(with_cca),
                )
        self.ctx.barrier()
        return out

    def _save(self, epoch: int, step_in_epoch: int) -> None:
        if not self.ctx.is_main:
            return
        save_checkpoint(
            self.t.run_dir, self.model, step=self.global_step, epoch=epoch,
            optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
            recipe_hash=self.recipe.hash(), extra={"step_in_epoch": step_in_epoch},
            metadata={"architecture": self.recipe.backbone.name,
                      "feature_dim": str(self.model.backbone.feature_dim),
                      "moeheads_version": __version__},
            keep_last=self.recipe.trainer.keep_last, overwrite=True,
        )
