"""The recipe's training sections: ``optimizer``, ``schedule``, ``trainer`` and ``monitor``."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from moeheads.recipe.component import STRICT

MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 2**20
_DEVICE = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"


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

    model_config = STRICT

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

    model_config = STRICT

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

    model_config = STRICT

    epochs: int = Field(ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(ge=2, le=MAX_BATCH_SIZE)
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "auto"
    channels_last: bool = False
    compile: bool = False
    grad_clip: float | None = Field(None, gt=0)
    accumulate: int = Field(1, ge=1)
    checkpoint_every: int = Field(1, ge=1)
    keep_last: int = Field(3, ge=1)
    device: str = "auto"
    backbone_passes: Literal["separate", "joint"] = "separate"
    steps_per_epoch: int | None = Field(None, ge=1)
    log_every: int = Field(10, ge=1)
    deterministic: bool = False
    timeout_minutes: float = Field(60.0, gt=0)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not re.fullmatch(_DEVICE, value):
            raise ValueError(f"must be auto, cpu, mps, cuda or cuda:N (N a GPU index), "
                             f"got {value!r}")
        return value

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
        grad_norms: At each logged step, the norm of the gradient that reaches the
            backbone's features from each task (``<task>/grad_norm``); not with
            ``trainer.compile``, whose backward cannot run twice.
    """

    model_config = STRICT

    knn_every: int = Field(1, ge=0)
    knn_k: int = Field(200, ge=1)
    knn_temperature: float = Field(0.1, gt=0)
    probe_images: int | None = Field(None, ge=1)
    routing: bool = True
    cca_every: int = Field(1, ge=0)
    grad_norms: bool = True
