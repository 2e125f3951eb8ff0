"""The photometric part of views, batched on the training device with per-image parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from moeheads.views.batch import Views
from moeheads.views.blur import gaussian_blur
from moeheads.views.color import adjust_brightness, adjust_contrast, adjust_saturation, grayscale
from moeheads.views.hsv import adjust_hue
from moeheads.views.layout import BLUR_SIGMA, GRAYSCALE, JITTER, NEUTRAL_JITTER, NUM_PARAMS
from moeheads.views.options import ViewOptions

Index = Tensor | slice

_JITTER_FNS: tuple[Callable[[Tensor, Tensor], Tensor], ...] = (
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    adjust_hue,
)


@dataclass
class PreparedViews:
    """Views ready for the backbone.

    Attributes:
        views: Normalised float ``[V, B, 3, S, S]``.
        params: Float ``[V, B, 11]``.
        original: Normalised float ``[B, 3, S, S]``, or ``None``.
        labels: int64 ``[B]``, or ``None``.
    """

    views: Tensor
    params: Tensor
    original: Tensor | None = None
    labels: Tensor | None = None


class Photometric(nn.Module):
    """Colour jitter (in each image's sampled order), grayscale, blur and normalise.

    Vectorised over the batch: for each of the four jitter positions and each op,
    the images whose op at that position changes them are processed together (a
    loop over 4 x 4 op slots, never over images). Images are converted from uint8
    to float32 in [0, 1] first, so the result equals torchvision's functional ops
    (``adjust_brightness/contrast/saturation/hue``, ``rgb_to_grayscale``,
    ``gaussian_blur``, ``normalize``) applied one image at a time to the float
    image with the same parameters, within an absolute error of 1e-5 (tested).

    Args:
        kernel_size: Odd Gaussian blur kernel size.
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation standard deviation.
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        kernel_size: int = 9,
        mean: tuple[float, float, float] = ViewOptions().mean,
        std: tuple[float, float, float] = ViewOptions().std,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1), persistent=False)

    @classmethod
    def from_options(cls, options: ViewOptions) -> Photometric:
        """The photometric step matching a sampler's options (kernel size, mean, std)."""
        return cls(options.kernel_size, options.mean, options.std)

    def forward(self, images: Tensor, params: Tensor, jitter_order: Tensor) -> Tensor:
        """Apply the photometric parameters and normalise.

        Args:
            images: uint8 (or float in [0, 1]) ``[..., 3, H, W]``.
            params: ``[..., 11]`` parameters, leading dims as ``images``.
            jitter_order: int ``[..., 4]`` op ids in application order.

        Returns:
            Normalised float32 ``[..., 3, H, W]``.
        """
        lead = images.shape[:-3]
        x = self.to_float(images).reshape(-1, *images.shape[-3:])
        p = params.reshape(-1, NUM_PARAMS).to(x.device, torch.float32)
        order = jitter_order.reshape(-1, 4).to(x.device)
        x = self.jitter(x, p[:, JITTER], order)
        x = _apply_rows(x, p[:, GRAYSCALE] > 0.5, lambda xs, _: grayscale(xs).expand_as(xs))
        sigma = p[:, BLUR_SIGMA]
        x = _apply_rows(x, sigma > 0, lambda xs, i: gaussian_blur(xs, sigma[i], self.kernel_size))
        return self.normalize(x).reshape(*lead, *x.shape[-3:])

    def jitter(self, x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
        """Jitter float images ``[N, 3, H, W]`` by factors ``[N, 4]`` in op order ``[N, 4]``."""
        neutral = factors.new_tensor(NEUTRAL_JITTER)
        changes = factors != neutral
        for position in range(order.shape[-1]):
            for op, fn in enumerate(_JITTER_FNS):
                rows = (order[:, position] == op) & changes[:, op]
                f = factors[:, op]
                x = _apply_rows(x, rows, lambda xs, i, fn=fn, f=f: fn(xs, f[i]))
        return x

    def to_float(self, images: Tensor) -> Tensor:
        """uint8 images to float32 in [0, 1] (float images pass through as float32)."""
        images = images.to(self.mean.device, non_blocking=True)
        if images.dtype == torch.uint8:
            return images.to(torch.float32).div_(255.0)
        return images.to(torch.float32, copy=True)

    def normalize(self, x: Tensor) -> Tensor:
        """``(x - mean) / std`` per channel."""
        return (x - self.mean).div_(self.std)

    def prepare(self, batch: Views, device: torch.device | str | None = None) -> PreparedViews:
        """Move a :class:`Views` batch to ``device`` and make its float images.

        The module itself is moved to ``device`` first when one is given.
        """
        if device is not None:
            self.to(device)
        target = self.mean.device
        original = None
        if batch.original is not None:
            original = self.normalize(self.to_float(batch.original))
        labels = None if batch.labels is None else batch.labels.to(target, non_blocking=True)
        return PreparedViews(
            views=self(batch.views, batch.params, batch.jitter_order),
            params=batch.params.to(target, non_blocking=True),
            original=original,
            labels=labels,
        )


def _apply_rows(x: Tensor, rows: Tensor, fn: Callable[[Tensor, Index], Tensor]) -> Tensor:
    """``x`` with the rows selected by the mask ``rows`` replaced by ``fn(x[sel], sel)``.

    Written in place when only some rows are selected; skipped when none is.
    """
    idx = rows.nonzero().squeeze(-1)
    if idx.numel() == 0:
        return x
    if idx.numel() == x.shape[0]:
        return fn(x, slice(None))
    x[idx] = fn(x[idx], idx)
    return x
