"""The photometric part of views, batched on the training device with per-image parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from moeheads.errors import ConfigError
from moeheads.views.batch import Views
from moeheads.views.blur import gaussian_blur
from moeheads.views.color import blend_, grayscale, per_image
from moeheads.views.hsv import adjust_hue
from moeheads.views.kornia_jitter import KORNIA_OPS
from moeheads.views.layout import (
    BLUR_SIGMA,
    GRAYSCALE,
    JITTER,
    JITTER_OPS,
    NEUTRAL_JITTER,
    NUM_PARAMS,
)
from moeheads.views.options import IMAGENET_MEAN, IMAGENET_STD, ViewOptions

Index = Tensor | slice

_CPU_CHUNK_BYTES = 16 << 20
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = (
    JITTER_OPS.index(name) for name in ("brightness", "contrast", "saturation", "hue")
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

    Vectorised over the batch (a loop over the four jitter positions, never over
    images): see :meth:`jitter`; grayscale and blur run on the rows that use them.
    Images are converted from uint8 to float32 in [0, 1] first, so the result
    equals torchvision's functional ops (``adjust_brightness/contrast/saturation/
    hue``, ``rgb_to_grayscale``, ``gaussian_blur``, ``normalize``) applied one image
    at a time to the float image with the same parameters, within an absolute error
    of 1e-5 before normalisation (tested).

    The batch is processed in chunks of rows written in place into the output. On
    CPU small chunks keep temporaries in reused heap memory (large fresh buffers
    cost a page fault per page); on other devices the default is one chunk.

    Args:
        kernel_size: Odd Gaussian blur kernel size.
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation standard deviation.
        chunk_size: Rows per chunk; ``None`` means about 16 MB of float32 pixels
            per chunk on CPU and the whole batch elsewhere.
        masked: Select the rows an op changes with masks (every op runs on every row,
            ``torch.where`` keeps the result where it applies) rather than with indices,
            whose count the host must read, which makes it wait for the device. ``None``:
            masks on accelerators, indices on CPU (where nothing waits).
        jitter: ``torchvision`` semantics (each image in its own sampled op order) or
            ``kornia`` (kornia 0.4.1, STAR's authors: see
            `moeheads.views.kornia_jitter`; every image of a view group ``[..., B]``
            takes the op order sampled for the group's first image).
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        kernel_size: int = 9,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        chunk_size: int | None = None,
        jitter: str = "torchvision",
        masked: bool | None = None,
    ) -> None:
        super().__init__()
        if jitter not in ("torchvision", "kornia"):
            raise ConfigError(f"jitter must be 'torchvision' or 'kornia', got {jitter!r}")
        self.jitter_semantics = jitter
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be odd and positive, got {kernel_size}")
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        self.kernel_size = kernel_size
        self.chunk_size = chunk_size
        self.masked = masked
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1), persistent=False)

    @classmethod
    def from_options(cls, options: ViewOptions, chunk_size: int | None = None) -> Photometric:
        """The photometric step matching a sampler's options (kernel, mean, std, jitter)."""
        return cls(options.kernel_size, options.mean, options.std, chunk_size, options.jitter)

    def forward(self, images: Tensor, params: Tensor, jitter_order: Tensor) -> Tensor:
        """Apply the photometric parameters and normalise.

        Args:
            images: uint8 (or float in [0, 1]) ``[..., 3, H, W]``, on any device.
            params: ``[..., 11]`` parameters, leading dims as ``images``.
            jitter_order: int ``[..., 4]`` op ids in application order.

        Returns:
            Normalised float32 ``[..., 3, H, W]`` on this module's device.
        """
        lead, shape = images.shape[:-3], images.shape[-3:]
        if self.jitter_semantics == "kornia" and jitter_order.dim() > 1:  # one per group
            jitter_order = jitter_order[..., :1, :].expand_as(jitter_order)
        flat = images.reshape(-1, *shape)
        device = self.mean.device
        p = params.reshape(-1, NUM_PARAMS).to(device, torch.float32, non_blocking=True)
        order = jitter_order.reshape(-1, 4).to(device, non_blocking=True)
        out = torch.empty(flat.shape, dtype=torch.float32, device=device)
        step = self._chunk_rows(flat)
        for start in range(0, flat.shape[0], step):
            rows = slice(start, start + step)
            x = self._load(out[rows], flat[rows])
            masked = self._masked(x)
            if self.jitter_semantics == "kornia":
                jitter_kornia(x, p[rows, JITTER], order[rows], masked)
            else:
                self.jitter(x, p[rows, JITTER], order[rows])
            _apply_rows(x, p[rows, GRAYSCALE] > 0.5, lambda xs, _: grayscale(xs).expand_as(xs),
                        masked)
            sigma = p[rows, BLUR_SIGMA]
            _apply_rows(
                x, sigma > 0, lambda xs, i, s=sigma: gaussian_blur(xs, s[i], self.kernel_size),
                masked,
            )
            x.sub_(self.mean).div_(self.std)
        return out.reshape(*lead, *shape)

    def jitter(self, x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
        """Jitter float images ``[N, 3, H, W]`` in place (factors, op order: ``[N, 4]``).

        At each of the four positions, brightness, contrast and saturation are one
        blend over the whole batch (with black, the mean luma or the luma; factor
        1 for rows doing another op, which leaves them exactly unchanged); hue
        runs on the rows whose op at that position is a hue shift.
        """
        neutral = neutral_factors(factors)
        masked = self._masked(x)
        for position in range(order.shape[-1]):
            op = order[:, position]
            f = factors.gather(1, op.unsqueeze(1)).squeeze(1)
            changes = f != neutral[op]
            is_blend = changes & (op != _HUE)
            if masked or bool(is_blend.any()):  # a blend with factor 1 changes nothing
                _blend_step(x, op, torch.where(is_blend, f, torch.ones_like(f)), masked)
            hue = changes & (op == _HUE)
            _apply_rows(x, hue, lambda xs, i, f=f: adjust_hue(xs, f[i]), masked)
        return x

    def _masked(self, x: Tensor) -> bool:
        return x.device.type != "cpu" if self.masked is None else self.masked

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 (or [0, 1] float) images ``[..., 3, H, W]`` to normalised float32."""
        x = self._load(None, images.to(self.mean.device, non_blocking=True))
        return x.sub_(self.mean).div_(self.std)

    def _load(self, out: Tensor | None, images: Tensor) -> Tensor:
        """``images`` as float32 in [0, 1], written into ``out`` (or a new tensor)."""
        if out is None:
            out = torch.empty(images.shape, dtype=torch.float32, device=self.mean.device)
        out.copy_(images, non_blocking=True)
        return out.div_(255.0) if images.dtype == torch.uint8 else out

    def _chunk_rows(self, images: Tensor) -> int:
        if self.chunk_size is not None:
            return self.chunk_size
        if self.mean.device.type != "cpu":
            return max(1, images.shape[0])
        return max(1, _CPU_CHUNK_BYTES // (4 * images[0].numel()))

    def prepare(self, batch: Views, device: torch.device | str | None = None) -> PreparedViews:
        """Move a :class:`Views` batch to ``device`` and make its float images.

        The module itself is moved to ``device`` first when one is given.
        """
        if device is not None:
            self.to(device)
        target = self.mean.device
        original = None
        if batch.original is not None:
            original = self.normalize(batch.original)
        labels = None if batch.labels is None else batch.labels.to(target, non_blocking=True)
        return PreparedViews(
            views=self(batch.views, batch.params, batch.jitter_order),
            params=batch.params.to(target, non_blocking=True),
            original=original,
            labels=labels,
        )


def jitter_kornia(x: Tensor, factors: Tensor, order: Tensor, masked: bool = False) -> Tensor:
    """Jitter float images ``[N, 3, H, W]`` in place with kornia 0.4.1's semantics.

    At each of the four positions, each op runs on the rows whose op there it is and
    whose factor is not neutral (so rows without jitter stay exactly unchanged).
    ``masked``: rows selected with masks, not indices (see :class:`Photometric`).
    """
    neutral = neutral_factors(factors)
    for position in range(order.shape[-1]):
        op = order[:, position]
        f = factors.gather(1, op.unsqueeze(1)).squeeze(1)
        changes = f != neutral[op]
        for k, fn in enumerate(KORNIA_OPS):
            _apply_rows(x, changes & (op == k), lambda xs, i, f=f, fn=fn: fn(xs, f[i]), masked)
    return x


def neutral_factors(like: Tensor) -> Tensor:
    """The jitter factors that change nothing, made on ``like``'s device and dtype.

    Filled there rather than copied from the host, which on CUDA makes the host wait.
    """
    out = torch.empty(len(NEUTRAL_JITTER), dtype=like.dtype, device=like.device)
    for k, value in enumerate(NEUTRAL_JITTER):
        out[k] = value
    return out


def _blend_step(x: Tensor, op: Tensor, f: Tensor, masked: bool = False) -> None:
    """Brightness, contrast or saturation per row (op 0, 1, 2) as one in-place blend.

    Unless ``masked``, a blend of brightness alone skips the luma (the host checks).
    """
    if not masked and bool((op[f != 1] == _BRIGHTNESS).all()):
        blend_(x, None, f)
        return
    luma = grayscale(x)
    is_contrast = per_image((op == _CONTRAST) & (f != 1), x)
    is_saturation = per_image((op == _SATURATION) & (f != 1), x)
    other = luma * is_saturation + luma.mean(dim=(-3, -2, -1), keepdim=True) * is_contrast
    blend_(x, other, f)


def _apply_rows(
    x: Tensor, rows: Tensor, fn: Callable[[Tensor, Index], Tensor], masked: bool = False
) -> None:
    """Replace, in place, the rows of ``x`` selected by the mask ``rows`` by ``fn(x[sel], sel)``.

    ``masked``: ``fn`` runs on every row and ``torch.where`` keeps its result on the
    selected ones (no index count for the host to read).
    """
    if masked:
        x.copy_(torch.where(rows.view(-1, 1, 1, 1), fn(x, slice(None)), x))
        return
    idx = rows.nonzero().squeeze(-1)
    if idx.numel() == x.shape[0]:
        x.copy_(fn(x, slice(None)))
    elif idx.numel():
        x[idx] = fn(x[idx], idx)
