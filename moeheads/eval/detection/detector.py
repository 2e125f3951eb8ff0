"""Build the C4 Faster R-CNN detector of the ``detection`` protocol."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import nn

from moeheads.eval.detection.model import C4Trunk, Res5Head, freeze, resnet_stages
from moeheads.eval.detection.sampling import use_seeded_draws


def build_detector(
    backbone: nn.Module,
    num_classes: int,
    *,
    freeze_at: int = 0,
    anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
    train_sizes: Sequence[int] = tuple(range(480, 801, 32)),
    test_size: int = 800,
    max_size: int = 1333,
    roi_size: int = 14,
    rois_per_image: int = 512,
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
) -> Any:
    """A torchvision ``FasterRCNN`` whose trunk and box head are copies of a ResNet's stages.

    Its training draws (sizes, sampled anchors and RoIs) can be set per image with
    :func:`~moeheads.eval.detection.sampling.seed_images`.

    Args:
        backbone: A torchvision or timm ResNet (a :class:`~moeheads.backbones.Backbone`'s
            ``module``); its weights are copied, the module itself is left unchanged.
        num_classes: Object classes, without the background (20 for VOC).
        freeze_at: Stages frozen (0: train all; 1 stem; 2 + res2; 3 + res3; 4 + res4).
        anchor_sizes: RPN anchor sides in pixels (three aspect ratios each).
        train_sizes: Shorter image sides drawn from for each training image.
        test_size: Shorter image side at test time.
        max_size: Longer image side limit.
        roi_size: RoIAlign output side (res5 halves it).
        rois_per_image: Sampled proposals a training image for the box head.
        mean: Per-channel mean of images in ``[0, 1]``.
        std: Per-channel standard deviation.

    Raises:
        ConfigError: ``backbone`` is not a ResNet.
    """
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    stem, stages = resnet_stages(backbone)
    stem, stages = copy.deepcopy(stem), [copy.deepcopy(s) for s in stages]
    trunk = C4Trunk(stem, stages[:3])
    freeze(trunk, freeze_at)
    head = Res5Head(stages[3])
    model = FasterRCNN(
        trunk, num_classes=None,
        min_size=tuple(train_sizes), max_size=max_size, image_mean=list(mean),
        image_std=list(std),
        rpn_anchor_generator=AnchorGenerator((tuple(anchor_sizes),), ((0.5, 1.0, 2.0),)),
        rpn_pre_nms_top_n_train=12000, rpn_pre_nms_top_n_test=6000,
        rpn_post_nms_top_n_train=2000, rpn_post_nms_top_n_test=1000,
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=roi_size, sampling_ratio=0),
        box_head=head, box_predictor=FastRCNNPredictor(head.out_channels, num_classes + 1),
        box_batch_size_per_image=rois_per_image, box_score_thresh=0.05, box_detections_per_img=100,
    )
    use_seeded_draws(model)
    model.test_size = test_size
    return model


def set_image_sizes(model: Any, training: bool, train_sizes: Sequence[int]) -> None:
    """Shorter sides the detector resizes to: a random one of ``train_sizes`` when
    training, its ``test_size`` otherwise (torchvision's transform uses the last)."""
    model.transform.min_size = tuple(train_sizes) if training else (model.test_size,)
