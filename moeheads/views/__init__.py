"""Parametrised views: sample augmentation parameters, apply them, batch them.

The geometric part (crop, resize, flip) runs per image in DataLoader workers
(:class:`ViewsDataset`, :func:`collate_views`) or for a whole batch on the training
device (:class:`DeviceViews`; :func:`build_input_pipeline` picks one); the photometric
part (jitter, grayscale, blur, normalise) runs batched on the training device
(:class:`Photometric`). Every view's parameters are recorded as an 11-value vector
(layout in `moeheads.views.layout`), standardised by :class:`ParamStandardizer`.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader
    >>> from moeheads.views import ViewSampler, ViewsDataset, collate_views, Photometric
    >>> images = [(torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8), 0)] * 8
    >>> sampler = ViewSampler(size=32)
    >>> loader = DataLoader(ViewsDataset(images, sampler, seed=0), batch_size=4,
    ...                     collate_fn=collate_views)
    >>> batch = Photometric.from_options(sampler.options).prepare(next(iter(loader)))
    >>> batch.views.shape, batch.original.shape, batch.params.shape
    (torch.Size([2, 4, 3, 32, 32]), torch.Size([4, 3, 32, 32]), torch.Size([2, 4, 11]))
"""

from moeheads.views.batch import Views, ViewSample, collate_views
from moeheads.views.dataset import ViewsDataset, sample_seed
from moeheads.views.device import make_views
from moeheads.views.device_views import DeviceViews
from moeheads.views.difference import param_difference
from moeheads.views.geometric import apply_geometric, center_view, to_image_tensor
from moeheads.views.layout import JITTER_OPS, NUM_PARAMS, PARAM_NAMES
from moeheads.views.options import ViewOptions
from moeheads.views.photometric import Photometric, PreparedViews
from moeheads.views.pipeline import InputPipeline, build_input_pipeline
from moeheads.views.sampler import ViewSampler
from moeheads.views.standardize import ParamStandardizer, param_moments

__all__ = [
    "JITTER_OPS",
    "NUM_PARAMS",
    "PARAM_NAMES",
    "DeviceViews",
    "InputPipeline",
    "ParamStandardizer",
    "Photometric",
    "PreparedViews",
    "ViewOptions",
    "ViewSample",
    "ViewSampler",
    "Views",
    "ViewsDataset",
    "apply_geometric",
    "build_input_pipeline",
    "center_view",
    "collate_views",
    "make_views",
    "param_difference",
    "param_moments",
    "sample_seed",
    "to_image_tensor",
]
