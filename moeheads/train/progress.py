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

#: How the epoch summary names a metric (``metrics.jsonl`` keeps the raw keys).
METRIC_LABELS = {
    "loss": "loss",
    "images_per_s": "train img/s",
    "knn_top1": "kNN top-1",
    "nn1_top1": "1-NN top-1",
    "cca_mean": "mean CCA",
    "feature_images_per_s": "probe img/s",
}


def metric_label(key: str) -> str:
    """A metric's name for people: ``knn_top1`` -> ``kNN top-1``, ``aux/importance`` ->
    ``aux importance``, a task loss (``inv``) -> ``inv loss``."""
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    if "/" in key:
        return key.replace("/", " ").replace("_", " ")
    return f"{key.replace('_', ' ')} loss"


def format_metric(key: str, value: float) -> str:
    """``label value``: accuracies as percentages, rates as whole numbers."""
    label = metric_label(key)
    if key.endswith("top1"):
        return f"{label} {100 * value:.1f}%"
    if key.endswith("per_s"):
        return f"{label} {value:,.0f}"
    return f"{label} {value:.4g}"


def epoch_line(epoch: int, epochs: int, summary: dict[str, float]) -> str:
    """The terminal summary of an epoch (1-based), e.g.
    ``epoch 2/10  loss 3.21 · inv loss 2.9 · kNN top-1 41.2% · train img/s 1,830``."""
    shown = [format_metric(k, v) for k, v in summary.items()
             if "/" not in k and isinstance(v, int | float)]
    return f"epoch {epoch}/{epochs}  " + " · ".join(shown)


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
