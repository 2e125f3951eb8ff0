"""One epoch after another: steps, monitoring, checkpoints (used by :class:`Trainer`)."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from moeheads._version import __version__
from moeheads.assembly.build import build_dataset
from moeheads.errors import InterruptedRunError, NonFiniteLossError
from moeheads.loggers import create_loggers
from moeheads.recipe.schema import Recipe
from moeheads.rundir.checkpoint import TrainingState, save_checkpoint
from moeheads.rundir.metrics import MetricsLog
from moeheads.rundir.rng import capture_rng_state
from moeheads.train.builder import TrainingParts
from moeheads.train.grad_norms import task_gradient_norms
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
        # a compiled backward frees its buffers: no second pass through it for the norms
        self.grad_norms = recipe.monitor.grad_norms and not recipe.trainer.compile
        self.interrupt = GracefulInterrupt()
        #: The command that continues this run, for messages.
        self.resume_command = f"moeheads run {run_dir / 'recipe.yaml'} --resume auto"
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
            InterruptedRunError: Ctrl-C, SIGTERM or SIGUSR1: after a checkpoint at the next
                step boundary, or (a second Ctrl-C) at once, without one.
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
                        f"a checkpoint; continue from the newest one with: {self.resume_command}"
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
        they agree at each log step (in the log step's one all-reduce, see :meth:`_read`)
        and at the epoch's end only."""
        if not self.ctx.distributed:
            return self.interrupt.requested
        if not epoch_end:
            return self._stop_agreed
        return self.ctx.mean(float(self.interrupt.requested)) > 0

    def _stopped(self, epoch: int) -> None:
        """After the checkpoint: hand the signal to an earlier handler (a scheduler
        integration), then end the run."""
        self.interrupt.hand_over()
        signum = self.interrupt.signal_number or signal.SIGTERM  # a rank that only agreed
        raise InterruptedRunError(
            f"{signal.Signals(signum).name}: interrupted at epoch {epoch}, step "
            f"{self.global_step}; checkpoint written, continue with: {self.resume_command}",
            signal_number=signum,
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
        self._nonfinite = torch.zeros((), device=self.ctx.device)  # losses that were not finite
        self._stop_agreed = False
        self.progress.start_epoch(epoch, trainer.epochs, self.steps_per_epoch, first_step)
        tic, images = time.perf_counter(), 0
        micro = 0
        for batch in self.loader:
            micro += 1
            values = self._train_step(batch, last=micro % trainer.accumulate == 0)
            images += batch.views.shape[1] * self.ctx.world_size
            if values is None:
                continue
            if self.global_step % trainer.log_every == 0:  # the host reads values only here
                scalars = self._read(values, epoch, agree_stop=True)
                lr = self.optimizer.param_groups[0]["lr"]
                rate = images / max(time.perf_counter() - tic, 1e-9)
                self.progress.step(self._step_in_epoch, scalars["loss"], rate, lr)
                self.log.write("step", epoch=epoch + 1, step=self.global_step, lr=lr,
                               images_per_s=rate, **scalars)
            if self._step_in_epoch < self.steps_per_epoch and self._stop_requested():
                self.progress.end_epoch()
                self._save(epoch, self._step_in_epoch)
                self._stopped(epoch + 1)
        self.progress.end_epoch()
        totals = self._read(self.tally.sums, epoch)  # mean over ranks; checks finiteness
        summary = {name: total / max(self.tally.count, 1) for name, total in totals.items()}
        summary["images_per_s"] = images / max(time.perf_counter() - tic, 1e-9)
        summary.update(self._monitor(epoch))
        if self.ctx.is_main:
            routing = self.tally.gates.stats() if self.recipe.monitor.routing else None
            self.log.write("epoch", epoch=epoch + 1, step=self.global_step, **summary,
                           routing=routing)
            self.progress.print(epoch_line(epoch + 1, trainer.epochs, summary))
        return summary

    def _train_step(self, batch: Any, last: bool) -> dict[str, torch.Tensor] | None:
        """Forward and backward of one micro-batch; on the ``last`` of a step, the optimiser
        step too. Queues work on the device and never reads a value back from it.

        Returns:
            After an optimiser step, the step's loss and parts (detached, on the device);
            else ``None``.
        """
        trainer = self.recipe.trainer
        prepared = self.photometric.prepare(batch, self.ctx.device)
        if trainer.channels_last:
            prepared.views = channels_last(prepared.views)
            if prepared.original is not None:
                prepared.original = channels_last(prepared.original)
        # gradients are all-reduced once per optimiser step, in its last micro-batch
        no_sync = self.ctx.distributed and not last
        with self.network.no_sync() if no_sync else contextlib.nullcontext():  # type: ignore[operator]
            with torch.autocast(self.ctx.device.type, dtype=self.dtype or torch.float32,
                                enabled=self.dtype is not None):
                out = self.network(prepared)
            loss = out.loss.loss
            self._nonfinite += (~torch.isfinite(loss.detach())).float()
            logged = last and (self.global_step + 1) % trainer.log_every == 0
            norms = (task_gradient_norms(out, self.model.objective.tasks)
                     if logged and self.grad_norms else {})
            self.scaler.scale(loss / trainer.accumulate).backward()
        if not last:
            return None
        self._optimizer_step()
        values = out.loss.detached()
        self.tally.add(values)
        self.tally.gates.add(out.gates)
        return {**values, **norms}

    def _read(self, values: dict[str, Any], epoch: int,
              agree_stop: bool = False) -> dict[str, float]:
        """``values`` (device scalars) averaged over ranks and read by the host, in one
        all-reduce with whether a loss was not finite (and, with ``agree_stop``, whether
        Ctrl-C was pressed on some rank).

        Raises:
            NonFiniteLossError: A loss since the start of the epoch was not finite.
        """
        names = list(values)
        device = self.ctx.device
        flags = [self._nonfinite, torch.tensor(float(self.interrupt.requested), device=device)]
        stacked = torch.stack([torch.as_tensor(values[n], device=device).float() for n in names]
                              + flags)
        if self.ctx.distributed:
            stacked = self.ctx.all_reduce_sum(stacked)
            stacked[: len(names)] /= self.ctx.world_size
        host = stacked.tolist()
        if host[len(names)] > 0:
            raise NonFiniteLossError(
                f"the loss was not finite at epoch {epoch + 1}, by step {self.global_step}"
            )
        if agree_stop:
            self._stop_agreed = host[len(names) + 1] > 0
        return dict(zip(names, host[: len(names)], strict=True))

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
        """Every rank calls this (its generators are saved too); rank 0 writes."""
        extra: dict[str, Any] = {"step_in_epoch": step_in_epoch}
        if step_in_epoch:  # the epoch's sums so far (mean over ranks; checks finiteness)
            tally = self.tally.state_dict()
            tally["sums"] = self._read(self.tally.sums, epoch)
            extra["epoch_tally"] = tally
        if self.ctx.distributed:  # every rank's generators, for an exact resume
            extra["rng_ranks"] = self.ctx.gather_object(capture_rng_state())
        if not self.ctx.is_main:
            return
        state = TrainingState(
            self.model, step=self.global_step, epoch=epoch,
            optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
            recipe_hash=self.recipe.hash(),
            extra=extra,
            metadata={"architecture": self.recipe.backbone.name,
                      "feature_dim": str(self.model.backbone.feature_dim),
                      "moeheads_version": __version__},
        )
        save_checkpoint(self.run_dir, state, keep_last=self.recipe.trainer.keep_last,
                        overwrite=True)
