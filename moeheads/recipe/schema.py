"""Recipes: pydantic models of a full pretraining + evaluation run.

A recipe is a YAML file validated by :class:`Recipe`. Components are named and
configured inline (``router: {name: star, temperature: 1.0}``) and their options are
validated against the registered component's own options model, so a recipe and a
Python call share one source of truth. Unknown keys are errors everywhere.

Each section has its model in a module of its own (:mod:`~moeheads.recipe.data`,
:mod:`~moeheads.recipe.model`, :mod:`~moeheads.recipe.training`,
:mod:`~moeheads.recipe.evaluation`); this module assembles them.

Example:
    >>> recipe = Recipe.model_validate({
    ...     "name": "demo",
    ...     "data": {"dataset": {"name": "synthetic_shapes", "size": 32}},
    ...     "backbone": {"name": "small_cnn"},
    ...     "heads": {"num_experts": 4, "router": {"name": "star"}},
    ...     "tasks": {"inv": {"name": "ntxent"}, "eq": {"name": "star_eq"}},
    ...     "trainer": {"epochs": 1, "batch_size": 32},
    ... })
    >>> recipe.heads.router.name, recipe.optimizer.name
    ('star', 'sgd')
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from moeheads.errors import ConfigError
from moeheads.recipe.component import STRICT, Component, loss_inputs, validate_component
from moeheads.recipe.data import DataConfig, ViewsConfig
from moeheads.recipe.evaluation import EvaluationStage
from moeheads.recipe.model import BackboneConfig, HeadsConfig, TaskConfig
from moeheads.recipe.training import MonitorConfig, OptimizerConfig, ScheduleConfig, TrainerConfig
from moeheads.recipe.user_modules import import_user_modules

__all__ = [
    "BackboneConfig",
    "Component",
    "DataConfig",
    "EvaluationStage",
    "HeadsConfig",
    "MonitorConfig",
    "OptimizerConfig",
    "Recipe",
    "ScheduleConfig",
    "TaskConfig",
    "TrainerConfig",
    "ViewsConfig",
]


class Recipe(BaseModel):
    """A full run: data, views, backbone, heads, tasks, optimisation, monitoring, evaluation.

    Attributes:
        imports: Modules (``my_lab.routers``) or ``.py`` files imported before the
            rest of the recipe is validated, so that components they register can be
            named (see [`moeheads.recipe.user_modules`][moeheads.recipe.user_modules]).
        name: Run name; the run directory is ``<output_dir>/<name>``.
        seed: Seed of model initialisation, data order and views.
        output_dir: Where run directories are created.
        data: Datasets and loading.
        views: The view distribution.
        backbone: The backbone.
        heads: Experts and router.
        tasks: Task name -> loss (``{inv: {name: ntxent, temperature: 0.2}}``).
        optimizer: The optimiser.
        schedule: The learning-rate schedule.
        trainer: The loop.
        monitor: Monitoring during pretraining.
        evaluation: Evaluation stages after pretraining.
        loggers: Experiment loggers that receive the metrics
            (``[{name: tensorboard}, {name: wandb, project: star}, {name: mlflow}]``;
            ``moeheads list loggers``).
    """

    model_config = STRICT

    imports: list[str] = Field(default_factory=list)
    name: str
    seed: int = 0
    output_dir: Path = Path("runs")
    data: DataConfig
    views: ViewsConfig = Field(default_factory=ViewsConfig)
    backbone: BackboneConfig
    heads: HeadsConfig = Field(default_factory=HeadsConfig)
    tasks: dict[str, TaskConfig]
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    trainer: TrainerConfig
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    evaluation: list[EvaluationStage] = Field(default_factory=list)
    loggers: list[Component] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _usable_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", value):
            raise ValueError(f"must start with a letter or digit and hold only letters, digits, "
                             f"'_', '.' and '-' (it names the run directory), got {value!r}")
        return value

    @field_validator("loggers")
    @classmethod
    def _known_loggers(cls, value: list[Component]) -> list[Component]:
        from moeheads.loggers import PROVIDED

        for logger in value:
            validate_component("loggers", logger, PROVIDED)
        return value

    @model_validator(mode="before")
    @classmethod
    def _import_first(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("imports"):
            imports = data["imports"]
            if isinstance(imports, str):
                imports = [imports]
            try:
                import_user_modules(str(entry) for entry in imports)
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return data

    @field_validator("tasks")
    @classmethod
    def _some_task(cls, value: dict[str, TaskConfig], info: ValidationInfo) -> dict:
        if not value:
            raise ValueError("a recipe needs at least one task")
        if all(task.weight == 0 for task in value.values()):
            raise ValueError("every task's weight is 0, so nothing would be trained")
        return value

    @field_validator("output_dir")
    @classmethod
    def _output_dir_not_a_file(cls, value: Path) -> Path:
        for path in (value, *value.parents):
            if path.exists():
                if not path.is_dir():
                    raise ValueError(f"{path} is a file; output_dir must be a directory")
                break
        return value

    @model_validator(mode="after")
    def _views_feed_the_tasks(self) -> Recipe:
        if self.views.original:
            return self
        needing = [f"tasks.{task} ({config.name})" for task, config in self.tasks.items()
                   if "original" in loss_inputs(config.name)]
        if needing:
            raise ValueError(
                f"views.original is false but {', '.join(needing)} needs the original "
                "(un-augmented) view; set views.original: true or use an invariant loss"
            )
        return self

    @property
    def run_dir(self) -> Path:
        """``output_dir / name``."""
        return self.output_dir / self.name

    def hash(self) -> str:
        """SHA-256 of the fields that change training (not monitoring, evaluation or paths)."""
        data = self.model_dump(mode="json",
                               exclude={"output_dir", "monitor", "evaluation", "loggers"})
        if not data["imports"]:
            del data["imports"]  # recipes without imports keep the hash they always had
        data["trainer"].pop("log_every", None)
        data["trainer"].pop("timeout_minutes", None)
        data["data"].pop("num_workers", None)
        data["views"].pop("pipeline", None)
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()
