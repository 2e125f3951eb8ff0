"""Views of a whole batch made at once on the training device (crop, resize, flip, original).

:func:`batch_views` makes every view of a batch of equal-size images in a few batched
ops (the separable taps of `moeheads.views.resample`), the path used on CUDA. On CPU,
:func:`loop_views` calls PyTorch's resize kernel once per view in this process, which is
faster there. Both give exactly what the DataLoader workers' per-image
:func:`~moeheads.views.geometric.apply_geometric` gives (tested).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.views.geometric import crop_box
from moeheads.views.layout import FLIP
from moeheads.views.resample import linear_taps, resample

Method = Literal["auto", "taps", "loop"]
Taps = tuple[Tensor, Tensor]


def crop_taps(params: Tensor, height: int, width: int, size: int, antialias: bool
              ) -> tuple[Taps, Taps]:
    """Taps ``[V, B, S, K]`` of the crop + resize + flip that ``params`` ``[V, B, 11]`` record.

    The pixel box is recovered as :func:`~moeheads.views.geometric.crop_box` does.
    """
    p = params.to(torch.float64)
    top = (p[..., 0] * height).round().long()
    left = (p[..., 1] * width).round().long()
    h = (p[..., 2] * height).round().long()
    w = (p[..., 3] * width).round().long()
    zero = torch.zeros_like(top)
    y = linear_taps(top, h, torch.full_like(h, size), zero, size, antialias)
    x_index, x_weight = linear_taps(left, w, torch.full_like(w, size), zero, size, antialias)
    flip = (params[..., FLIP] > 0.5)[..., None, None]
    x_index = torch.where(flip, x_index.flip(-2), x_index)
    x_weight = torch.where(flip, x_weight.flip(-2), x_weight)
    return y, (x_index, x_weight)


def center_resize(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """``(new_h, new_w, top, left)`` of :func:`~moeheads.views.geometric.center_view`.

    The shorter side is resized to ``size`` and the longer to ``int(size * long / short)``,
    then the centre ``size x size`` is kept (torchvision's arithmetic).
    """
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_h, new_w = size, int(size * width / height)
    return new_h, new_w, round((new_h - size) / 2.0), round((new_w - size) / 2.0)


def center_taps(batch: int, height: int, width: int, size: int, antialias: bool,
                device: torch.device) -> tuple[Taps, Taps]:
    """Taps ``[1, B, S, K]`` of :func:`~moeheads.views.geometric.center_view`."""
    new_h, new_w, top, left = center_resize(height, width, size)
    ones = torch.ones((1, batch), dtype=torch.long, device=device)
    y = linear_taps(ones * 0, ones * height, ones * new_h, ones * top, size, antialias)
    x = linear_taps(ones * 0, ones * width, ones * new_w, ones * left, size, antialias)
    return y, x


def _cat_taps(a: Taps, b: Taps) -> Taps:
    """Concatenate taps along the rows, padding the shorter tap axis with zero weights."""
    taps = max(a[0].shape[-1], b[0].shape[-1])

    def pad(t: Taps) -> Taps:
        index, weight = t
        extra = taps - index.shape[-1]
        if extra:
            index = torch.cat([index, index[..., -1:].expand(*index.shape[:-1], extra)], -1)
            weight = F.pad(weight, (0, extra))
        return index, weight

    (ia, wa), (ib, wb) = pad(a), pad(b)
    return torch.cat([ia, ib]), torch.cat([wa, wb])


def batch_views(images: Tensor, params: Tensor, size: int, antialias: bool = True,
                original: bool = True) -> tuple[Tensor, Tensor | None]:
    """The views recorded in ``params`` and the original of each image, in batched ops.

    Args:
        images: uint8 ``[B, C, H, W]`` (C = 1 or 3), on any device.
        params: ``[V, B, 11]`` view parameters.
        size: Output side length.
        antialias: Antialias when downscaling.
        original: Also make the originals.

    Returns:
        uint8 views ``[V, B, C, S, S]`` and originals ``[B, C, S, S]`` (or ``None``).
    """
    b, _, height, width = images.shape
    y, x = crop_taps(params.to(images.device), height, width, size, antialias)
    if original:
        cy, cx = center_taps(b, height, width, size, antialias, images.device)
        y, x = _cat_taps(y, cy), _cat_taps(x, cx)
    out = resample(images, y, x)
    return (out[:-1], out[-1]) if original else (out, None)


def _resize(image: Tensor, height: int, width: int, antialias: bool) -> Tensor:
    """``[1, C, h, w]`` to ``[1, C, height, width]`` with PyTorch's bilinear kernel."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    return F.interpolate(image, size=(height, width), mode="bilinear", antialias=antialias,
                         align_corners=False)


def loop_views(images: Tensor, params: Tensor, size: int, antialias: bool = True,
               original: bool = True) -> tuple[Tensor, Tensor | None]:
    """:func:`batch_views` with one resize call per view (fast on CPU; same arguments)."""
    v, b = params.shape[:2]
    c, height, width = images.shape[1:]
    views = torch.empty((v, b, c, size, size), dtype=images.dtype, device=images.device)
    for k, row in enumerate(params.tolist()):
        for i, p in enumerate(row):
            top, left, h, w = crop_box(p, height, width)
            view = _resize(images[i : i + 1, :, top : top + h, left : left + w], size, size,
                           antialias)
            views[k, i] = view[0].flip(-1) if p[FLIP] > 0.5 else view[0]
    if not original:
        return views, None
    new_h, new_w, top, left = center_resize(height, width, size)
    originals = _resize(images, new_h, new_w, antialias)[..., top : top + size,
                                                          left : left + size]
    return views, originals.contiguous()


def make_views(images: Tensor, params: Tensor, size: int, antialias: bool = True,
               original: bool = True, method: Method = "auto") -> tuple[Tensor, Tensor | None]:
    """Views and originals of a batch; ``method`` ``auto`` loops on CPU and batches elsewhere.

    Single-channel images are repeated to three channels, as the workers' path does.
    """
    if method == "auto":
        method = "loop" if images.device.type == "cpu" else "taps"
    fn = loop_views if method == "loop" else batch_views
    views, originals = fn(images, params, size, antialias, original)
    if views.shape[-3] == 1:
        views = views.expand(*views.shape[:-3], 3, size, size).contiguous()
        if originals is not None:
            originals = originals.expand(-1, 3, size, size).contiguous()
    return views, originals
