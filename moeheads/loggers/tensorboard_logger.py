"""``tensorboard``: TensorBoard event files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moeheads.loggers.base import LOGGERS, as_yaml, require_package


@LOGGERS.register("tensorboard")
class TensorBoardLogger:
    """TensorBoard event files (``tensorboard --logdir runs``)

    Args:
        run_dir: The run directory.
        run_name: The recipe's name.
        config: The resolved recipe, written once as text.
        log_dir: Where the event files go (default ``<run>/tensorboard``).
    """

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any],
                 log_dir: Path | None = None) -> None:
        tensorboard = require_package("torch.utils.tensorboard", "tensorboard")
        self.log_dir = Path(log_dir) if log_dir is not None else Path(run_dir) / "tensorboard"
        self.writer = tensorboard.SummaryWriter(str(self.log_dir))
        self.writer.add_text("recipe", f"```\n{as_yaml(config)}\n```")

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
