"""The ``detection`` protocol: fine-tune a C4 Faster R-CNN on a pretrained ResNet, score AP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset

from moeheads.errors import ConfigError, MoeheadsError
from moeheads.eval.detection.coco_check import coco_ap, import_coco
from moeheads.eval.detection.detector import build_detector
from moeheads.eval.detection.inference import predict
from moeheads.eval.detection.train import Schedule, train_detector
from moeheads.eval.detection.voc_eval import VOCResult, voc_ap
from moeheads.runtime.distributed import DistContext, current_context
from moeheads.runtime.sync_batchnorm import convert_sync_batchnorm

Positive = Annotated[int, Field(ge=1)]


@dataclass(frozen=True)
class DetectionResult:
    """Detection AP after fine-tuning.

    Attributes:
        voc: VOC-style AP, AP50, AP75 (VOC2007 11-point interpolation).
        coco: The COCO-style cross-check (``coco_AP``, ``coco_AP50``, ``coco_AP75``).
        losses: The logged training losses.
    """

    voc: VOCResult
    coco: dict[str, float]
    losses: list[dict[str, float]]


def detection_transfer(
    backbone: nn.Module, train: Dataset, test: Dataset, classes: Sequence[str],
    device: str | torch.device = "cpu", checkpoint: Path | None = None,
    mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225),
    log: Callable[[str], None] = print, num_workers: int = 0,
    *,
    iterations: Annotated[int, Field(ge=0)] = 24000,
    images_per_batch: Positive = 16,
    lr: Annotated[float, Field(gt=0)] = 0.02,
    warmup_iters: Annotated[int, Field(ge=0)] = 100,
    steps: tuple[int, ...] = (18000, 22000),
    gamma: float = 0.1, momentum: float = 0.9, weight_decay: float = 1e-4,
    train_sizes: tuple[int, ...] = tuple(range(480, 801, 32)),
    test_size: Positive = 800,
    max_size: Positive = 1333,
    flip: bool = True,
    freeze_at: Annotated[int, Field(ge=0, le=4)] = 0,
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512),
    roi_size: Positive = 14,
    rois_per_image: Positive = 512,
    test_images_per_batch: Positive = 4,
    log_every: Positive = 20, checkpoint_every: Positive = 1000, seed: int = 0,
) -> DetectionResult:
    """Fine-tune Faster R-CNN C4 on ``train`` from a ResNet's weights; AP on ``test``.

    Under torchrun every process calls it and gets the result: each trains and tests on its
    share (:mod:`~moeheads.eval.detection.train`); rank 0 scores, logs and writes files.

    Args:
        backbone: A torchvision or timm ResNet module (its weights are copied).
        train: Detection items ``(uint8 image, {"boxes", "labels", "difficult"})``.
        test: Items as ``train``, scored with :func:`voc_ap` and :func:`coco_ap`.
        classes: Class names, index = label.
        device: Where the detector runs (under torchrun: this process's device).
        checkpoint: The detector's checkpoint file (resumed from when it exists).
        mean: Per-channel image mean (in ``[0, 1]``).
        std: Per-channel image standard deviation.
        log: Receives the progress lines.
        num_workers: DataLoader worker processes.
        iterations, images_per_batch, lr, warmup_iters, steps, gamma, momentum,
            weight_decay: The SGD schedule (:class:`Schedule`; MoCo's VOC07+12 one).
        train_sizes, test_size, max_size, flip: Image sizes and training flips.
        freeze_at, anchor_sizes, roi_size, rois_per_image: The detector
            (:func:`build_detector`).
        test_images_per_batch, log_every, checkpoint_every, seed: Test batches, progress
            lines, checkpoints and the seed of every random draw and of the new layers.
    """
    import_coco()  # before hours of training, not after
    ctx = _context(device, len(train), images_per_batch)  # type: ignore[arg-type]
    model = _build(backbone, len(classes), ctx, seed, freeze_at=freeze_at,
                   anchor_sizes=anchor_sizes, train_sizes=train_sizes, test_size=test_size,
                   max_size=max_size, roi_size=roi_size, rois_per_image=rois_per_image,
                   mean=mean, std=std)
    schedule = Schedule(iterations, images_per_batch, lr, warmup_iters, tuple(steps), gamma,
                        momentum, weight_decay, tuple(train_sizes), flip, seed)
    losses = train_detector(model, train, schedule, ctx.device, checkpoint, checkpoint_every,
                            log_every, log, num_workers, ctx) if iterations else []
    detections, truths = predict(model, test, ctx.device, test_images_per_batch, num_workers,
                                 ctx)
    return _score_on_main(ctx, detections, truths, classes, losses)


def _context(device: str | torch.device, images: int, images_per_batch: int) -> DistContext:
    """The processes that run the protocol together; several split every batch evenly, so
    it must divide and be there whole."""
    ctx = current_context(device)
    if ctx.distributed:
        _check_split(ctx, images, images_per_batch)
    return ctx


def _check_split(ctx: DistContext, images: int, images_per_batch: int) -> None:
    if images_per_batch % ctx.world_size:
        raise ConfigError(
            f"detection: images_per_batch {images_per_batch} (the global batch) does not "
            f"split evenly over {ctx.world_size} processes; use a multiple of {ctx.world_size}"
        )
    if images < images_per_batch:
        raise ConfigError(f"detection: {images} training images are fewer than "
                          f"images_per_batch {images_per_batch}")


def _build(backbone: nn.Module, num_classes: int, ctx: DistContext, seed: int,
           **options: Any) -> Any:
    """The detector (:func:`build_detector`) on this process's device, its new layers
    drawn from ``seed``; with synchronised BatchNorm in the trained stages and the box head
    when several processes train (frozen stages stay frozen)."""
    torch.manual_seed(seed)
    model = build_detector(backbone, num_classes, **options)
    if ctx.distributed:
        model = convert_sync_batchnorm(model, ctx.device)
    return model.to(ctx.device)


def _score_on_main(ctx: DistContext, detections: list, truths: list, classes: Sequence[str],
                   losses: list[dict[str, float]]) -> DetectionResult:
    """The AP of all detections (which rank 0 holds), computed there, on every rank."""
    return ctx.on_main(lambda: DetectionResult(voc_ap(detections, truths, classes),
                                               coco_ap(detections, truths, len(classes)),
                                               losses), (MoeheadsError, ValueError))


def summary_of(result: DetectionResult) -> dict[str, Any]:
    """Headline numbers: VOC-style AP, AP50, AP75 and the COCO-style AP beside them."""
    return {"AP": result.voc.AP, "AP50": result.voc.AP50, "AP75": result.voc.AP75,
            "coco_AP": result.coco["coco_AP"], "coco_AP50": result.coco["coco_AP50"]}
