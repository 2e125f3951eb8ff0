"""``wandb``: Weights & Biases, offline by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from moeheads.loggers.base import LOGGERS, require_package, run_id_file


@LOGGERS.register("wandb")
class WandbLogger:
    """Weights & Biases, offline by default (``wandb sync <run>/wandb/offline-run-*``)

    Args:
        run_dir: The run directory; W&B writes under ``<run>/wandb``.
        run_name: The recipe's name (the W&B run name).
        config: The resolved recipe (the W&B config).
        project: The W&B project.
        entity: The W&B entity (user or team).
        mode: ``offline`` (files only), ``online`` or ``disabled``.
        tags: Run tags.
    """

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any],
                 project: str = "moeheads", entity: str | None = None,
                 mode: Literal["offline", "online", "disabled"] = "offline",
                 tags: list[str] | None = None) -> None:
        wandb = require_package("wandb", "wandb")
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, entity=entity, name=run_name, mode=mode,
                              dir=str(run_dir), config=config, tags=tags,
                              id=run_id_file(run_dir, "wandb"), resume="allow", reinit=True)

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()
