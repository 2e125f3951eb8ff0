"""Backbones: any image model that maps ``[B, 3, H, W]`` images to ``[B, d]`` features.

One contract, :class:`~moeheads.backbones.base.Backbone` (a module plus its feature
dimension ``d``), built by :func:`~moeheads.backbones.create.create_backbone` from:

- ``"torchvision:<name>"``: any torchvision classification model with its classifier
  removed (ResNet options: ``zero_init_residual``, ``small_images`` for a 3x3 stem
  without max-pool; any other option goes to the model, e.g. ``image_size`` of a ViT);
- ``"timm:<name>"``: ``timm.create_model(name, num_classes=0, **options)`` (``pip install
  'moeheads[timm]'``), e.g. ``img_size``, ``patch_size``, ``drop_path_rate``;
- ``"small_cnn"``: a small CNN for CPU-scale recipes;
- an ``nn.Module`` passed directly, with its feature dimension (found by a dry run
  when not given).

One adapter a module: :mod:`~moeheads.backbones.torchvision_models`,
:mod:`~moeheads.backbones.timm_models`, :mod:`~moeheads.backbones.cnn`; the
contract and registry in :mod:`~moeheads.backbones.base`.
"""

from moeheads.backbones.base import BACKBONES, Backbone, infer_feature_dim
from moeheads.backbones.checks import check_backbone_options
from moeheads.backbones.cnn import small_cnn
from moeheads.backbones.create import create_backbone
from moeheads.backbones.timm_models import TimmOptions, timm_backbone
from moeheads.backbones.torchvision_models import TorchvisionOptions, torchvision_backbone

__all__ = [
    "BACKBONES",
    "Backbone",
    "TimmOptions",
    "TorchvisionOptions",
    "check_backbone_options",
    "create_backbone",
    "infer_feature_dim",
    "small_cnn",
    "timm_backbone",
    "torchvision_backbone",
]
