"""The options of the view distribution: every range configurable, STAR's defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from moeheads.errors import ConfigError
from moeheads.registry import describe_validation_error

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _probability(default: float) -> Any:
    return Field(default, ge=0.0, le=1.0)


class ViewOptions(BaseModel):
    """How views are drawn (STAR / SimCLR defaults) and normalised.

    Colour jitter magnitudes follow torchvision's ``ColorJitter``: brightness,
    contrast and saturation factors are drawn from ``U(max(0, 1 - m), 1 + m)``, the
    hue shift from ``U(-m, m)``. Invalid options raise
    :class:`~moeheads.errors.ConfigError` naming the field.

    Attributes:
        size: Output side length in pixels (views are square).
        scale: Range of the crop area as a fraction of the image area.
        ratio: Range of the crop aspect ratio (width / height), sampled log-uniformly.
        flip_p: Probability of a horizontal flip.
        jitter_p: Probability of applying colour jitter (all four ops, random order).
        jitter: What the jitter factors mean when applied: ``torchvision`` (brightness
            scales, contrast and saturation blend with grey, op order per image) or
            ``kornia`` (kornia 0.4.1, as STAR's authors: brightness adds ``f - 1``,
            contrast scales, saturation scales S in HSV, one op order per view group
            of a batch); see `moeheads.views.kornia_jitter`. Same parameter vector.
        brightness: Brightness magnitude m.
        contrast: Contrast magnitude m.
        saturation: Saturation magnitude m.
        hue: Hue magnitude m (at most 0.5).
        grayscale_p: Probability of converting to grayscale.
        blur_p: Probability of a Gaussian blur.
        blur_sigma: Range of the blur sigma (uniform), in pixels.
        blur_kernel_size: Odd blur kernel size; ``None`` means about 10% of ``size``
            (9 at 96 px, 23 at 224 px).
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation standard deviation.
        antialias: Antialias when resizing crops.

    Example:
        >>> ViewOptions(size=224).kernel_size
        23
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(96, ge=8)
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = _probability(0.5)
    jitter_p: float = _probability(0.8)
    jitter: Literal["torchvision", "kornia"] = "torchvision"
    brightness: float = Field(0.4, ge=0.0)
    contrast: float = Field(0.4, ge=0.0)
    saturation: float = Field(0.4, ge=0.0)
    hue: float = Field(0.1, ge=0.0, le=0.5)
    grayscale_p: float = _probability(0.2)
    blur_p: float = _probability(0.5)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_size: int | None = Field(None, ge=1)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    antialias: bool = True

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ConfigError(
                describe_validation_error(error, "views", type(self).model_fields)
            ) from None

    @model_validator(mode="after")
    def _check_ranges(self) -> ViewOptions:
        low, high = self.scale
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        low, high = self.ratio
        if not 0.0 < low <= high:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {self.ratio}")
        low, high = self.blur_sigma
        if not 0.0 < low <= high:
            raise ValueError(f"blur_sigma must satisfy 0 < low <= high, got {self.blur_sigma}")
        if self.blur_kernel_size is not None and self.blur_kernel_size % 2 == 0:
            raise ValueError(f"blur_kernel_size must be odd, got {self.blur_kernel_size}")
        if self.kernel_size // 2 >= self.size:
            raise ValueError(f"blur_kernel_size must be below 2 * size, got {self.kernel_size}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        return self

    @property
    def kernel_size(self) -> int:
        """The blur kernel size: ``blur_kernel_size`` or about 10% of ``size``, odd."""
        if self.blur_kernel_size is not None:
            return self.blur_kernel_size
        k = max(3, int(0.1 * self.size))
        return k if k % 2 else k + 1

    def factor_range(self, op: str) -> tuple[float, float]:
        """The sampling range of jitter op ``brightness|contrast|saturation|hue``."""
        m = float(getattr(self, op))
        return (-m, m) if op == "hue" else (max(0.0, 1.0 - m), 1.0 + m)
