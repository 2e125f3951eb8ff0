"""Per-image random draws of detector training that do not depend on how a batch is split.

torchvision's Faster R-CNN draws each training image's size and the anchors and RoIs
it samples from the global generator, one image after another, so what an image gets
depends on the images before it in the same process. Here every image of a global batch
has its own flip, size and seed, drawn from the schedule's generator for the whole
global batch on every process; each process uses those of its own images. Split over
several processes, a batch thus gets the draws it gets in one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler
from torchvision.models.detection.transform import GeneralizedRCNNTransform

#: Added to an image's seed for the RPN's anchors and for the box head's RoIs.
RPN_STREAM, ROI_STREAM = 0, 1


@dataclass(frozen=True)
class ImageDraws:
    """Random choices for the images of a batch, in batch order.

    Attributes:
        flips: Mirror the image left to right.
        sizes: Shorter side it is resized to.
        seeds: Seed of the anchors and RoIs sampled for it.
    """

    flips: list[bool]
    sizes: list[int]
    seeds: list[int]

    def part(self, start: int, stop: int) -> ImageDraws:
        """The draws of images ``start`` to ``stop - 1``."""
        return ImageDraws(self.flips[start:stop], self.sizes[start:stop], self.seeds[start:stop])


def draw_images(generator: torch.Generator, count: int, flip: bool, sizes: Sequence[int]
                ) -> ImageDraws:
    """Flips (all false without ``flip``), sizes (each one of ``sizes``) and seeds of
    ``count`` images."""
    flips = (torch.rand(count, generator=generator) < 0.5).tolist() if flip else [False] * count
    chosen = torch.randint(len(sizes), (count,), generator=generator).tolist()
    seeds = torch.randint(2**62, (count,), generator=generator).tolist()
    return ImageDraws(flips, [sizes[i] for i in chosen], seeds)


class SeededSampler(BalancedPositiveNegativeSampler):
    """torchvision's balanced sampler, drawing each image's sample from its own seed.

    Args:
        batch_size_per_image: Elements sampled an image.
        positive_fraction: Most positives, as a share of ``batch_size_per_image``.
        stream: Added to each image's seed (the RPN and the box head draw apart).

    Without :attr:`seeds` (``None``) it draws from the global generator, as torchvision's.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float, stream: int) -> None:
        super().__init__(batch_size_per_image, positive_fraction)
        self.stream = stream
        #: Seeds of the images of the next call, in order.
        self.seeds: list[int] | None = None

    def __call__(self, matched_idxs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        if self.seeds is None:
            return super().__call__(matched_idxs)
        positives, negatives = [], []
        for matched, seed in zip(matched_idxs, self.seeds, strict=True):
            generator = torch.Generator().manual_seed(seed + self.stream)
            positive = torch.where(matched >= 1)[0]
            negative = torch.where(matched == 0)[0]
            num_pos = min(positive.numel(), int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.numel(), self.batch_size_per_image - num_pos)
            positives.append(_mask(matched, positive, num_pos, generator))
            negatives.append(_mask(matched, negative, num_neg, generator))
        return positives, negatives


def _mask(matched: Tensor, candidates: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """A uint8 mask like ``matched`` with ``count`` random ``candidates`` set."""
    chosen = torch.randperm(candidates.numel(), generator=generator)[:count]
    mask = torch.zeros_like(matched, dtype=torch.uint8)
    mask[candidates[chosen.to(candidates.device)]] = 1
    return mask


class SeededTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform, resizing training images to given sizes.

    Without :attr:`sizes` (``None``) it draws each size from the global generator, as
    torchvision's.
    """

    sizes: list[int] | None = None

    def torch_choice(self, k: list[int]) -> int:
        """The next of :attr:`sizes` (called once per training image, in order)."""
        if self.sizes is None:
            return super().torch_choice(k)
        return self.sizes.pop(0)


def seed_images(model: Any, draws: ImageDraws) -> None:
    """Make ``model`` (from :func:`~moeheads.eval.detection.detector.build_detector`) use
    ``draws`` for the images of its next training forward pass."""
    model.transform.sizes = list(draws.sizes)
    model.rpn.fg_bg_sampler.seeds = draws.seeds
    model.roi_heads.fg_bg_sampler.seeds = draws.seeds


def use_seeded_draws(model: Any) -> None:
    """Replace the transform and the two samplers of a torchvision ``FasterRCNN`` by
    their seeded versions (same settings)."""
    transform = model.transform
    model.transform = SeededTransform(transform.min_size, transform.max_size,
                                      transform.image_mean, transform.image_std,
                                      transform.size_divisible, transform.fixed_size)
    for owner, stream in ((model.rpn, RPN_STREAM), (model.roi_heads, ROI_STREAM)):
        old = owner.fg_bg_sampler
        owner.fg_bg_sampler = SeededSampler(old.batch_size_per_image, old.positive_fraction,
                                            stream)
