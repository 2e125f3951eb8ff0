"""Batched Gaussian blur with one sigma per image (torchvision's kernel, separable)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_kernels(sigma: Tensor, kernel_size: int, dtype: torch.dtype) -> Tensor:
    """Normalised 1-D Gaussian kernels ``[N, K]``, one per sigma, as torchvision builds them."""
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    x = torch.linspace(-lim, lim, steps=kernel_size, dtype=dtype, device=sigma.device)
    return torch.softmax(-(x / sigma.to(dtype).unsqueeze(-1)).pow(2), dim=-1)


def gaussian_blur(image: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur each image of ``[N, C, H, W]`` with its own ``sigma`` ``[N]`` (reflect padding).

    A depthwise convolution along rows, then along columns; equal to torchvision's
    2-D kernel up to float rounding.
    """
    n, c, height, width = image.shape
    kernels = gaussian_kernels(sigma, kernel_size, image.dtype).repeat_interleave(c, dim=0)
    pad = kernel_size // 2
    x = F.pad(image.reshape(1, n * c, height, width), [pad, pad, pad, pad], mode="reflect")
    x = F.conv2d(x, kernels.view(n * c, 1, 1, kernel_size), groups=n * c)
    x = F.conv2d(x, kernels.view(n * c, 1, kernel_size, 1), groups=n * c)
    return x.view(n, c, height, width)
