"""Batched colour ops with one factor per image, equal to torchvision's on float images.

Images are float ``[N, 3, H, W]`` in [0, 1]; factors are ``[N]``. Each op matches
the corresponding ``torchvision.transforms.v2.functional`` op applied image by image
(see ``tests/views/test_photometric.py`` for the tolerance).
"""

from __future__ import annotations

from torch import Tensor

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def per_image(factor: Tensor, image: Tensor) -> Tensor:
    """Factors ``[N]`` reshaped to ``[N, 1, 1, 1]`` in ``image``'s dtype."""
    return factor.to(image.dtype).view(-1, 1, 1, 1)


def blend_(image: Tensor, other: Tensor | None, factor: Tensor) -> Tensor:
    """In place: ``clamp(image * factor + other * (1 - factor), 0, 1)``, ``factor`` ``[N]``.

    Brightness, contrast and saturation are blends with black (``other=None``), the
    mean luma and the luma; a factor of 1 leaves a row exactly unchanged.
    """
    f = per_image(factor, image)
    image.mul_(f)
    if other is not None:
        image.add_(other * (1.0 - f))
    return image.clamp_(0.0, 1.0)


def grayscale(image: Tensor) -> Tensor:
    """Luma ``[N, 1, H, W]`` with torchvision's weights (0.2989, 0.587, 0.114)."""
    r, g, b = image.unbind(dim=-3)
    wr, wg, wb = _GRAY_WEIGHTS
    return r.mul(wr).add_(g, alpha=wg).add_(b, alpha=wb).unsqueeze(-3)


def adjust_brightness(image: Tensor, factor: Tensor) -> Tensor:
    """``clamp(image * factor, 0, 1)``."""
    return blend_(image.clone(), None, factor)


def adjust_contrast(image: Tensor, factor: Tensor) -> Tensor:
    """Blend with the mean luma of each image."""
    mean = grayscale(image).mean(dim=(-3, -2, -1), keepdim=True)
    return blend_(image.clone(), mean, factor)


def adjust_saturation(image: Tensor, factor: Tensor) -> Tensor:
    """Blend with each image's luma."""
    return blend_(image.clone(), grayscale(image), factor)
