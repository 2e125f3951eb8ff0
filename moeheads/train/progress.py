"""Progress on the terminal: a rich bar, or plain lines."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainProgress:
    """A progress display per epoch: a rich bar on a terminal, log lines otherwise.

    Args:
        console: Where to write.
        enabled: ``False`` on ranks other than 0.
        log_every: Steps between the loop's reports (``trainer.log_every``).
    """

    def __init__(self, console: Console, enabled: bool = True, log_every: int = 10) -> None:
        self.console = console
        self.enabled = enabled
        self.log_every = log_every
        self.live = enabled and console.is_terminal
        self._progress: Progress | None = None
        self._task: Any = None
        self._epoch = 0
        self._total = 0

    def start_epoch(self, epoch: int, epochs: int, total_steps: int, done: int = 0) -> None:
        """Begin the bar of ``epoch`` (0-based) with ``total_steps`` steps."""
        self._epoch, self._total = epoch, total_steps
        if not self.live:
            return
        self._progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=total_steps, completed=done,
                                             status="")

    def step(self, step_in_epoch: int, loss: float, images_per_s: float, lr: float) -> None:
        """Report a finished optimiser step (1-based within the epoch): a plain line, or the
        bar moved on. The loop reports its log steps only."""
        if not self.enabled:
            return
        status = f"loss {loss:.4f}  {images_per_s:,.0f} img/s  lr {lr:.3g}"
        if self._progress is not None:
            self._progress.update(self._task, completed=step_in_epoch, status=status)
        else:  # the loop reports log steps only (when it reads values from the device)
            self.console.print(
                f"epoch {self._epoch + 1} step {step_in_epoch}/{self._total}  {status}",
                highlight=False,
            )

    def end_epoch(self) -> None:
        """Close the bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def print(self, message: str) -> None:
        """A line of text (rank 0 only)."""
        if self.enabled:
            self.console.print(message, highlight=False)
