"""Batched crop + bilinear resize + flip as separable row gathers with per-row taps.

Each output pixel of a resize is a weighted sum of a few source pixels along x, then
along y. This module computes those taps (source index and weight per output pixel)
for a whole batch of crop boxes at once, with the formulas of PyTorch's
``interpolate(mode="bilinear")``: the antialiased filter (a triangle widened by the
downscaling factor, clipped to the crop, as in PIL) when ``antialias`` is set, plain
bilinear otherwise. It then applies them with row gathers (``index_select``) on any
device.

uint8 images are resampled in the arithmetic of PyTorch's uint8 CPU kernel, which
torchvision uses in DataLoader workers: int16 fixed-point weights and a uint8
rounding after each pass. The results are bit-exact with
:func:`torchvision.transforms.v2.functional.resized_crop` on x86 CPUs (tested); on
CPUs without AVX2 that kernel falls back to float weights and may differ by 1.
"""

from __future__ import annotations

import torch
from torch import Tensor


def linear_taps(
    start: Tensor,
    length: Tensor,
    out_length: Tensor,
    first: Tensor,
    size: int,
    antialias: bool,
) -> tuple[Tensor, Tensor]:
    """Source indices and weights along one axis for a batch of resizes.

    Row n resizes the source window ``[start[n], start[n] + length[n])`` to
    ``out_length[n]`` pixels and keeps the ``size`` output pixels from ``first[n]`` on
    (``first`` is 0 for a crop; the centre-crop offset for a resize-then-centre-crop).

    Args:
        start: Window start ``[...]`` (int).
        length: Window length ``[...]`` (int, >= 1).
        out_length: Resized length ``[...]`` (int, >= ``first + size``).
        first: First output pixel kept ``[...]`` (int).
        size: Output pixels kept.
        antialias: Widen the filter when downscaling.

    Returns:
        ``index`` int64 ``[..., size, K]`` (absolute source indices, always inside the
        window) and ``weight`` float64 ``[..., size, K]`` (rows sum to 1).
    """
    device = start.device
    length_f = length.to(torch.float64).unsqueeze(-1)
    scale = length_f / out_length.to(torch.float64).unsqueeze(-1)
    i = first.to(torch.float64).unsqueeze(-1) + torch.arange(size, dtype=torch.float64,
                                                              device=device)
    last = length.unsqueeze(-1).unsqueeze(-1) - 1
    if antialias:
        support = torch.where(scale >= 1.0, scale, torch.ones_like(scale))
        invscale = torch.where(scale >= 1.0, 1.0 / scale, torch.ones_like(scale))
    else:  # plain bilinear: the same triangle, never widened
        support = invscale = torch.ones_like(scale)
    center = scale * (i + 0.5)
    xmin = (center - support + 0.5).trunc().clamp(min=0.0)
    xmax = torch.minimum((center + support + 0.5).trunc(), length_f)
    count = (xmax - xmin).long()
    taps = int(count.max()) if count.numel() else 1
    j = torch.arange(taps, dtype=torch.float64, device=device)
    x = ((j + xmin.unsqueeze(-1) - center.unsqueeze(-1) + 0.5) * invscale.unsqueeze(-1)).abs()
    weight = (1.0 - x).clamp(min=0.0) * (j < count.unsqueeze(-1))
    weight = weight / weight.sum(-1, keepdim=True)
    index = (xmin.long().unsqueeze(-1) + j.long()).clamp(max=last)
    return index + start.unsqueeze(-1).unsqueeze(-1), weight


_PRECISION_BITS = 22
"""Most fractional bits of PyTorch's int16 resampling weights."""


def fixed_point(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Weights ``[..., S, K]`` as PyTorch's uint8 kernel stores them: int16 fixed point.

    Each resize axis (one ``[S, K]`` table) gets the most fractional bits (at most 22)
    that keep its largest weight below 2**15, and weights are rounded to them.

    Returns:
        The integer weights (as float64) and the number of fractional bits ``[...]``.
    """
    w_max = weight.amax(dim=(-2, -1))
    bits = torch.zeros_like(w_max)
    for q in range(_PRECISION_BITS):
        bits += ((0.5 + w_max * 2.0 ** (q + 1)).floor() < 2**15).double()
    return (0.5 + weight * torch.exp2(bits)[..., None, None]).floor(), bits


def _rows_pass(table: Tensor, index: Tensor, weight: Tensor) -> Tensor:
    """``sum_k weight[..., k] * table[index[..., k]]`` with whole rows of ``table`` ``[M, L]``.

    Row gathers (``index_select``) copy contiguous memory, which is much faster than an
    element-wise ``gather`` on CPU.
    """
    out: Tensor | None = None
    for k in range(index.shape[-1]):
        term = table.index_select(0, index[..., k].reshape(-1))
        term = term.view(*index.shape[:-1], table.shape[-1]).mul_(weight[..., k, None])
        out = term if out is None else out.add_(term)
    assert out is not None
    return out


def _axis_pass(table: Tensor, index: Tensor, weight: Tensor, exact: bool) -> Tensor:
    """One resampling pass; with ``exact``, in PyTorch's uint8 fixed-point arithmetic.

    The fixed-point sums are integers below ``255 * 2**bits``; they are computed in
    float32 where that is below 2**24 (exact) and in float64 otherwise.
    """
    if not exact:
        return _rows_pass(table, index, weight.to(table.dtype))
    weight, bits = fixed_point(weight)
    dtype = torch.float32 if float(bits.max()) <= 15 else torch.float64
    scale = torch.exp2(-bits).to(dtype)[..., None, None]
    out = _rows_pass(table.to(dtype), index, weight.to(dtype))
    # (sum + 2**(bits - 1)) >> bits, as the kernel rounds, then clamp to uint8
    return out.mul_(scale).add_(0.5).floor_().clamp_(0.0, 255.0).float()


def resample(images: Tensor, y_taps: tuple[Tensor, Tensor],
             x_taps: tuple[Tensor, Tensor]) -> Tensor:
    """Apply separable taps to a batch: R outputs of each of B images, x first, then y.

    Args:
        images: uint8 (or float) ``[B, C, H, W]``.
        y_taps: ``(index, weight)`` ``[R, B, S, K]`` along the height.
        x_taps: ``(index, weight)`` ``[R, B, S, K]`` along the width.

    Returns:
        ``[R, B, C, S, S]`` in ``images``' dtype. A uint8 batch is resampled as PyTorch's
        uint8 CPU kernel does it (int16 fixed-point weights, each pass rounded to uint8),
        so the result is bit-exact; a float batch in float32.
    """
    b, c, height, width = images.shape
    rows, size = x_taps[0].shape[0], x_taps[0].shape[-2]
    exact = images.dtype == torch.uint8
    device = images.device
    # x pass: table rows are (image, channel, column), each holding the column's H pixels
    table = images.float().transpose(-1, -2).reshape(b * c * width, height)
    first = (torch.arange(b, device=device)[:, None] * c + torch.arange(c, device=device))
    index = x_taps[0][:, :, None] + (first * width)[None, :, :, None, None]
    h = _axis_pass(table, index, x_taps[1][:, :, None], exact)  # [R, B, C, S, H]
    # y pass: table rows are (output, image, channel, row), each holding S pixels
    table = h.transpose(-1, -2).reshape(rows * b * c * height, size)
    first = torch.arange(rows * b * c, device=device).view(rows, b, c)
    index = y_taps[0][:, :, None] + (first * height)[..., None, None]
    out = _axis_pass(table, index, y_taps[1][:, :, None], exact)  # [R, B, C, S, S]
    return out.to(torch.uint8) if exact else out
