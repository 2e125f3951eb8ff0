"""Recipes: pydantic models of a full pretraining + evaluation run.

A recipe is a YAML file validated by :class:`Recipe`. Components are named and
configured inline (``router: {name: star, temperature: 1.0}``) and their options are
validated against the registered component's own options model, so a recipe and a
Python call share one source of truth. Unknown keys are errors everywhere.

The module is longer than 300 lines on purpose: it is the recipe's schema, one small
model per recipe section in the order of a recipe file, and the recipe reference page
is generated from it section by section.

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
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from moeheads.backbones import check_backbone_options
from moeheads.errors import ConfigError
from moeheads.heads import MoEHeads
from moeheads.registry import options_from_signature, registry_for
from moeheads.user_modules import import_user_modules
from moeheads.views.options import ViewOptions

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 2**20
_DEVICE = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"


class Component(BaseModel):
    """A registered component by ``name`` plus its options (any other keys)."""

    model_config = ConfigDict(extra="allow")

    name: str

    @property
    def options(self) -> dict[str, Any]:
        """The options, i.e. every key except ``name``."""
        return dict(self.model_extra or {})


def _validate_component(kind: str, component: Component, provided: tuple[str, ...] = ()) -> None:
    """Validate a component's options against its registry (raises ``ValueError``)."""
    try:
        registry_for(kind).validate(component.name, component.options, provided)
    except ConfigError as error:
        raise ValueError(str(error)) from None


def _loss_inputs(name: str) -> frozenset[str]:
    """What the registered loss ``name`` reads (``views``, ``original``, ``params``, ...)."""
    return getattr(registry_for("losses").get(name).builder, "inputs", frozenset())


class DataConfig(BaseModel):
    """Datasets and loading.

    Attributes:
        dataset: The pretraining dataset (``{name: stl10, root: data/stl10, split:
            train+unlabeled}``).
        probe_train: Labelled images the kNN monitor indexes (``None``: no monitor).
        probe_test: Labelled images the kNN monitor classifies.
        num_workers: DataLoader worker processes.
        pin_memory: Pin host memory (CUDA only).
    """

    model_config = _STRICT

    dataset: Component
    probe_train: Component | None = None
    probe_test: Component | None = None
    num_workers: int = Field(4, ge=0)
    pin_memory: bool = True

    @field_validator("dataset", "probe_train", "probe_test")
    @classmethod
    def _known_dataset(cls, value: Component | None) -> Component | None:
        if value is not None:
            _validate_component("datasets", value)
        return value

    @model_validator(mode="after")
    def _probe_pair(self) -> DataConfig:
        if (self.probe_train is None) != (self.probe_test is None):
            raise ValueError("probe_train and probe_test go together: give both or neither")
        return self


class ViewsConfig(ViewOptions):
    """The view distribution (every :class:`~moeheads.views.options.ViewOptions` field)
    plus how many views a sample has.

    Attributes:
        num_views: Views per image V (>= 2).
        original: Also produce the un-augmented original (needed by equivariant losses).
        pipeline: Where crops, resizes and flips run: ``workers`` (DataLoader
            processes, any dataset), ``device`` (a whole batch at once on the training
            device; in-memory datasets and JPEG files) or ``auto`` (``device`` on CUDA
            where the dataset allows it, else ``workers``). Both give the same views
            (see the views guide); not part of the recipe hash.
    """

    num_views: int = Field(2, ge=2)
    original: bool = True
    pipeline: Literal["workers", "device", "auto"] = "workers"

    def view_options(self) -> ViewOptions:
        """Only the distribution options."""
        return ViewOptions(**self.model_dump(exclude={"num_views", "original", "pipeline"}))


class BackboneConfig(Component):
    """``name`` is ``torchvision:<model>``, ``timm:<model>``, ``small_cnn``, ...; other keys
    are the family's options. ``timm:`` and ``torchvision:`` pass any other key to the
    model (``{name: "timm:vit_tiny_patch16_224", img_size: 96, patch_size: 8}``), checked
    by building the model on the meta device."""

    @model_validator(mode="after")
    def _known_backbone(self) -> BackboneConfig:
        family, _, model = self.name.partition(":")
        options = {**self.options, **({"model": model} if model else {})}
        _validate_component("backbones", Component(name=family, **options))
        try:
            check_backbone_options(family, options)
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return self


#: The options of :meth:`MoEHeads.build` that a recipe sets (the router comes as a component).
_HeadsOptions = options_from_signature(
    MoEHeads.build, "HeadsOptions", exclude=("in_features", "tasks", "router", "router_options")
)


class HeadsConfig(_HeadsOptions):  # type: ignore[misc,valid-type]
    """The expert bank and the router: the options of
    :meth:`~moeheads.heads.MoEHeads.build`, with the router as a component.

    Attributes:
        num_experts: Number of experts N.
        out_features: Embedding dimension of every task.
        hidden_features: Hidden widths of each expert (``None``: two of the feature width).
        batch_norm: BatchNorm after each hidden layer.
        activation: ``relu``, ``gelu`` or ``silu``.
        router: The routing strategy and its options.
    """

    model_config = _STRICT

    router: Component = Field(default_factory=lambda: Component(name="star"))

    @field_validator("router")
    @classmethod
    def _known_router(cls, value: Component) -> Component:
        _validate_component("routers", value, ("in_features", "num_experts", "tasks"))
        return value


class TaskConfig(Component):
    """A task's loss: ``name`` (the loss), ``weight`` and the loss's options."""

    weight: float = Field(1.0, ge=0.0)

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items() if k != "weight"}

    @model_validator(mode="after")
    def _known_loss(self) -> TaskConfig:
        _validate_component("losses", Component(name=self.name, **self.options))
        return self


class OptimizerConfig(BaseModel):
    """Optimiser. The learning rate is scaled with the global batch size.

    Attributes:
        name: ``sgd``, ``lars`` or ``adamw``.
        lr: Base learning rate at ``base_batch_size``.
        lr_scaling: ``linear`` (``lr * batch / base``), ``sqrt`` or ``none``.
        base_batch_size: The batch size ``lr`` refers to.
        momentum: SGD/LARS momentum.
        weight_decay: Weight decay.
        decay_norm_and_bias: Apply weight decay to BatchNorm and bias parameters too
            (STAR decays all parameters).
        betas: AdamW betas.
        trust_coefficient: LARS trust coefficient (eta).
    """

    model_config = _STRICT

    name: Literal["sgd", "lars", "adamw"] = "sgd"
    lr: float = Field(0.03, gt=0)
    lr_scaling: Literal["linear", "sqrt", "none"] = "linear"
    base_batch_size: int = Field(256, ge=1)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    decay_norm_and_bias: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    trust_coefficient: float = Field(0.001, gt=0)

    def scaled_lr(self, batch_size: int) -> float:
        """The learning rate for a global batch of ``batch_size``."""
        ratio = batch_size / self.base_batch_size
        factor = {"linear": ratio, "sqrt": ratio**0.5, "none": 1.0}[self.lr_scaling]
        return self.lr * factor


class ScheduleConfig(BaseModel):
    """Per-step learning-rate schedule.

    Attributes:
        name: ``cosine`` (to ``final_lr_ratio * lr``) or ``constant``.
        warmup_epochs: Linear warm-up from 0 (fractions allowed).
        final_lr_ratio: Final learning rate as a fraction of the peak.
    """

    model_config = _STRICT

    name: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0.0)
    final_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)


class TrainerConfig(BaseModel):
    """The training loop.

    Attributes:
        epochs: Number of epochs.
        batch_size: Global batch size (split evenly over processes).
        precision: ``fp32``, ``bf16``, ``fp16`` (CUDA, with a grad scaler) or ``auto``
            (on CUDA: bf16 where the GPU computes it natively, else fp16 with a grad
            scaler; fp32 elsewhere).
        channels_last: Use the channels-last memory format for images and backbone.
        compile: Compile the model with ``torch.compile``.
        grad_clip: Clip the global gradient norm to this value (``None``: off).
        accumulate: Gradient-accumulation steps per optimiser step.
        checkpoint_every: Save a checkpoint every this many epochs (and at the end).
        keep_last: Keep this many checkpoints.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (one process only: under torchrun
            each process takes the GPU of its ``LOCAL_RANK``).
        backbone_passes: ``separate`` (one backbone pass per view group, as in STAR, so
            BatchNorm sees each group's own statistics) or ``joint`` (one pass over all).
        steps_per_epoch: Cap the optimiser steps of an epoch (``None``: the whole dataset).
        log_every: Write a step line to the metrics (and the progress display) every this
            many steps: the only steps at which the host reads values back from the device
            (the loss parts, averaged over processes, and whether the loss stayed finite).
        deterministic: Ask PyTorch for deterministic algorithms (and set
            ``CUBLAS_WORKSPACE_CONFIG`` before CUDA starts); ``cudnn.benchmark`` is
            enabled only when this is off.
        timeout_minutes: How long processes wait for each other at a collective (rank 0
            alone runs the monitor and writes checkpoints meanwhile).
    """

    model_config = _STRICT

    epochs: int = Field(ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(ge=2, le=MAX_BATCH_SIZE)
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "auto"
    channels_last: bool = False
    compile: bool = False
    grad_clip: float | None = Field(None, gt=0)
    accumulate: int = Field(1, ge=1)
    checkpoint_every: int = Field(1, ge=1)
    keep_last: int = Field(3, ge=1)
    device: str = Field("auto", pattern=_DEVICE)
    backbone_passes: Literal["separate", "joint"] = "separate"
    steps_per_epoch: int | None = Field(None, ge=1)
    log_every: int = Field(10, ge=1)
    deterministic: bool = False
    timeout_minutes: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _accumulate_divides_batch(self) -> TrainerConfig:
        if self.batch_size % self.accumulate:
            raise ValueError(
                f"trainer.accumulate {self.accumulate} must divide trainer.batch_size "
                f"{self.batch_size} (each optimiser step is accumulate equal micro-batches)"
            )
        return self


class MonitorConfig(BaseModel):
    """What is measured during pretraining.

    Attributes:
        knn_every: Run the kNN monitor every this many epochs (0: never; needs probe data).
        knn_k: Neighbours of the weighted kNN classifier (its 1-NN accuracy is also logged).
        knn_temperature: Temperature of the weighted kNN vote.
        probe_images: Use at most this many probe images of each split (``None``: all).
        routing: Log routing statistics each epoch.
        cca_every: Mean canonical correlation between the task embeddings of probe images
            every this many epochs (0: never).
    """

    model_config = _STRICT

    knn_every: int = Field(1, ge=0)
    knn_k: int = Field(200, ge=1)
    knn_temperature: float = Field(0.1, gt=0)
    probe_images: int | None = Field(None, ge=1)
    routing: bool = True
    cca_every: int = Field(1, ge=0)


class EvaluationStage(BaseModel):
    """An evaluation run after pretraining: ``protocol`` plus its options."""

    model_config = ConfigDict(extra="allow")

    protocol: str

    @property
    def options(self) -> dict[str, Any]:
        """Every key except ``protocol``."""
        return dict(self.model_extra or {})


class Recipe(BaseModel):
    """A full run: data, views, backbone, heads, tasks, optimisation, monitoring, evaluation.

    Attributes:
        imports: Modules (``my_lab.routers``) or ``.py`` files imported before the
            rest of the recipe is validated, so that components they register can be
            named (see [`moeheads.user_modules`][moeheads.user_modules]).
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

    model_config = _STRICT

    imports: list[str] = Field(default_factory=list)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
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

    @field_validator("loggers")
    @classmethod
    def _known_loggers(cls, value: list[Component]) -> list[Component]:
        from moeheads.loggers import PROVIDED

        for logger in value:
            _validate_component("loggers", logger, PROVIDED)
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
                   if "original" in _loss_inputs(config.name)]
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
