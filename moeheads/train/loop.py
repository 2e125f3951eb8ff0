"""One epoch after another: steps, monitoring, checkpoints (used by :class:`Trainer`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from moeheads._version import __version__
from moeheads.config import Recipe
from moeheads.errors import InterruptedRunError, NonFiniteLossError
from moeheads.loggers import create_loggers
from moeheads.rundir.build import build_dataset
from moeheads.rundir.checkpoint import TrainingState, save_checkpoint
from moeheads.rundir.metrics import MetricsLog
from moeheads.train.builder import TrainingParts
from moeheads.train.interrupt import GracefulInterrupt
from moeheads.train.monitor import GateBuffer, probe_metrics
from moeheads.train.progress import TrainProgress, epoch_line
from moeheads.train.tally import EpochTally


def channels_last(images: torch.Tensor) -> torch.Tensor:
    """``[..., C, H, W]`` images with channels-last memory (any number of leading dims)."""
    return images.movedim(-3, -1).contiguous().movedim(-1, -3)


class TrainLoop:
    """The epoch/step loop of one :class:`~moeheads.train.engine.Trainer` run.

    Args:
        recipe: The run's recipe.
        run_dir: Where metrics and checkpoints go.
        console: Where progress goes.
        parts: The model, optimisation and data (from
            :func:`~moeheads.train.builder.build_training`).
    """

    def __init__(self, recipe: Recipe, run_dir: Path, console: Console,
                 parts: TrainingParts) -> None:
        self.recipe = recipe
        self.run_dir = run_dir
        self.ctx = ctx = parts.ctx
        self.model, self.network = parts.model, parts.network
        self.optimizer, self.scheduler, self.scaler = parts.optimizer, parts.scheduler, parts.scaler
        self.dtype = parts.dtype
        data = parts.data
        self.photometric = data.photometric
        self.loader, self.views, self.sampler = data.loader, data.views, data.sampler
        self.steps_per_epoch, self.total_steps = data.steps_per_epoch, parts.total_steps
        loggers = create_loggers(recipe.loggers, run_dir, recipe.name,
                                 recipe.model_dump(mode="json")) if ctx.is_main else []
        self.log = MetricsLog(run_dir / "metrics.jsonl" if ctx.is_main else None,
                              loggers=loggers)
        self.progress = TrainProgress(console, ctx.is_main, recipe.trainer.log_every)
        self.tally = EpochTally(GateBuffer())
        self.interrupt = GracefulInterrupt()
        self.probe = None
        if recipe.data.probe_train is not None and ctx.is_main:
            self.probe = (build_dataset(recipe.data.probe_train),
                          build_dataset(recipe.data.probe_test))

    def train(self, start_epoch: int, start_step: int, global_step: int,
              tally: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train from ``start_epoch`` (at ``start_step`` of it) to the recipe's last epoch.

        Args:
            start_epoch: Epoch to start in (0-based).
            start_step: Optimiser steps of that epoch already taken.
            global_step: Optimiser steps taken in all.
            tally: The started epoch's running sums (from a mid-epoch checkpoint).

        Raises:
            InterruptedRunError: Ctrl-C: after a checkpoint at the next step boundary, or
                (a second Ctrl-C) at once, without one.
        """
        trainer = self.recipe.trainer
        self.global_step = global_step
        metrics: dict[str, Any] = {}
        with GracefulInterrupt() as self.interrupt:
            for epoch in range(start_epoch, trainer.epochs):
                first = start_step if epoch == start_epoch else 0
                try:
                    metrics = self._epoch(epoch, first, tally if epoch == start_epoch else None)
                except KeyboardInterrupt:
                    self.progress.end_epoch()
                    raise InterruptedRunError(
                        f"stopped at once at epoch {epoch + 1}, step {self.global_step}, without "
                        "a checkpoint; continue from the newest one with: moeheads run RECIPE "
                        "--resume auto"
                    ) from None
                last = epoch + 1 == trainer.epochs
                stop = self._stop_requested(epoch_end=True)
                if (epoch + 1) % trainer.checkpoint_every == 0 or last or stop:
                    self._save(epoch + 1, 0)
                self.ctx.barrier()
                if stop and not last:
                    self._stopped(epoch + 1)
        return metrics

    def _stop_requested(self, epoch_end: bool = False) -> bool:
        """Whether Ctrl-C was pressed. Across processes, all must stop at the same step, so
        they agree (one small all-reduce) at each log step and epoch end only."""
        if not self.ctx.distributed:
            return self.interrupt.requested
        if not epoch_end and self.global_step % self.recipe.trainer.log_every:
            return False
        return self.ctx.mean(float(self.interrupt.requested)) > 0

    def _stopped(self, epoch: int) -> None:
        raise InterruptedRunError(
            f"interrupted at epoch {epoch}, step {self.global_step}; checkpoint written, "
            "continue with: moeheads run RECIPE --resume auto"
        )

    def _epoch(self, epoch: int, first_step: int,
               resumed: dict[str, Any] | None = None) -> dict[str, Any]:
        trainer = self.recipe.trainer
        self.sampler.set_epoch(epoch, first_step * trainer.accumulate)
        self.views.set_epoch(epoch)
        self.tally.clear()
        if resumed is not None:
            self.tally.load_state_dict(resumed)
        self.network.train()
        self._step_in_epoch = first_step
        self.progress.start_epoch(epoch, trainer.epochs, self.steps_per_epoch, first_step)
        tic, images = time.perf_counter(), 0
        micro = 0
        for batch in self.loader:
            prepared = self.photometric.prepare(batch, self.ctx.device)
            if trainer.channels_last:
                prepared.views = channels_last(prepared.views)
                if prepared.original is not None:
                    prepared.original = channels_last(prepared.original)
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
            self.tally.add(scalars)
            self.tally.gates.add(out.gates)
            lr = self.optimizer.param_groups[0]["lr"]
            rate = images / max(time.perf_counter() - tic, 1e-9)
            self.progress.step(self._step_in_epoch, scalars["loss"], rate, lr)
            if self.global_step % trainer.log_every == 0:
                self.log.write("step", epoch=epoch + 1, step=self.global_step, lr=lr,
                               images_per_s=rate, **scalars)
            if self._step_in_epoch < self.steps_per_epoch and self._stop_requested():
                self.progress.end_epoch()
                self._save(epoch, self._step_in_epoch)
                self._stopped(epoch + 1)
        self.progress.end_epoch()
        summary = self.tally.means()
        summary["images_per_s"] = images / max(time.perf_counter() - tic, 1e-9)
        summary.update(self._monitor(epoch))
        if self.ctx.is_main:
            routing = self.tally.gates.stats() if self.recipe.monitor.routing else None
            self.log.write("epoch", epoch=epoch + 1, step=self.global_step, **summary,
                           routing=routing)
            self.progress.print(epoch_line(epoch + 1, trainer.epochs, summary))
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
                f"{self.global_step}"
            )

    def _monitor(self, epoch: int) -> dict[str, float]:
        monitor = self.recipe.monitor
        out: dict[str, float] = {}
        if self.probe is not None:
            knn = monitor.knn_every and (epoch + 1) % monitor.knn_every == 0
            with_cca = monitor.cca_every and (epoch + 1) % monitor.cca_every == 0
            if knn or with_cca:
                out = probe_metrics(
                    self.model, *self.probe, views=self.recipe.views, monitor=monitor,
                    device=self.ctx.device, with_knn=bool(knn), with_cca=bool(with_cca),
                )
        self.ctx.barrier()
        return out

    def _save(self, epoch: int, step_in_epoch: int) -> None:
        if not self.ctx.is_main:
            return
        state = TrainingState(
            self.model, step=self.global_step, epoch=epoch,
            optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
            recipe_hash=self.recipe.hash(),
            extra={"step_in_epoch": step_in_epoch,
                   **({"epoch_tally": self.tally.state_dict()} if step_in_epoch else {})},
            metadata={"architecture": self.recipe.backbone.name,
                      "feature_dim": str(self.model.backbone.feature_dim),
                      "moeheads_version": __version__},
        )
        save_checkpoint(self.run_dir, state, keep_last=self.recipe.trainer.keep_last,
                        overwrite=True)
