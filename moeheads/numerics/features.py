"""Frozen-feature extraction: a backbone over a dataset, without augmentation.

Each image is resized (shorter side to ``image_size``) and center-cropped to
``image_size`` in the data-loading workers; batches are normalised on the device.
The backbone runs in eval mode under ``torch.no_grad``. Results can be cached on
disk as safetensors files keyed by a hash of the backbone's weights, the dataset
key and the preprocessing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from moeheads.errors import DataError, writing

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureSet(NamedTuple):
    """What :func:`extract_features` returns.

    Attributes:
        features: ``[N, d]`` float32 features (CPU).
        labels: ``[N]`` int64 labels (CPU).
        images_per_second: Extraction throughput, data loading included; ``None`` when
            the features came from the cache.
    """

    features: Tensor
    labels: Tensor
    images_per_second: float | None


class EvalTransform:
    """Resize the shorter side to ``size``, then center crop to ``size x size``.

    Accepts a PIL image or a ``[C, H, W]`` tensor (grey images are repeated to 3
    channels) and returns a ``[3, size, size]`` tensor of the input's dtype.

    Args:
        size: Output side in pixels (the pretraining resolution).
        interpolation: ``bilinear`` or ``bicubic`` (AugSelf's evaluation), antialiased.
    """

    def __init__(self, size: int, interpolation: str = "bilinear") -> None:
        if interpolation not in ("bilinear", "bicubic"):
            raise DataError(f"interpolation must be bilinear or bicubic, got {interpolation!r}")
        self.size = size
        self.interpolation = interpolation

    def __call__(self, image: Tensor | Image.Image) -> Tensor:
        if isinstance(image, Image.Image):
            image = TF.pil_to_tensor(image.convert("RGB"))
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise DataError(
                f"expected an image [C, H, W] with 1 or 3 channels, got {tuple(image.shape)}"
            )
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        mode = TF.InterpolationMode(self.interpolation)
        image = TF.resize(image, [self.size], interpolation=mode, antialias=True)
        return TF.center_crop(image, [self.size, self.size])

    def __repr__(self) -> str:
        if self.interpolation == "bilinear":  # the cache key of earlier runs
            return f"EvalTransform(size={self.size})"
        return f"EvalTransform(size={self.size}, interpolation={self.interpolation})"


class _Transformed(Dataset):
    def __init__(self, dataset: Any, transform: Callable[[Any], Tensor]) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self._apply(self.dataset[index])

    def __getitems__(self, indices: list[int]) -> list[tuple[Tensor, int]]:
        """A batch of items, fetched in one call when the dataset can (much faster)."""
        fetch = getattr(self.dataset, "__getitems__", None)
        items = fetch(indices) if fetch is not None else [self.dataset[i] for i in indices]
        return [self._apply(item) for item in items]

    def _apply(self, item: Any) -> tuple[Tensor, int]:
        image, label = item[:2]
        return self.transform(image), int(label)


def normalize_batch(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 (or float in [0, 1]) images ``[B, 3, H, W]`` -> normalised float32 images."""
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images - mean_t) / std_t


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of a module's state dict (names and raw bytes), for cache keys."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def cache_path(
    cache_dir: str | Path,
    backbone: nn.Module,
    dataset_key: str,
    transform: Callable[[Any], Tensor],
    mean: Sequence[float],
    std: Sequence[float],
) -> Path:
    """The cache file for these weights, dataset key and preprocessing."""
    parts = [weights_digest(backbone), dataset_key, repr(transform), repr(tuple(mean)),
             repr(tuple(std))]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
    return Path(cache_dir) / f"features-{key}.safetensors"


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    dataset: Any,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    transform: Callable[[Any], Tensor] | None = None,
    *,
    image_size: int = 96,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    cache_dir: str | Path | None = None,
    cache_key: str | None = None,
) -> FeatureSet:
    """Features ``[N, d]`` and labels ``[N]`` of every item of ``dataset``, in order.

    Args:
        backbone: Maps normalised images ``[B, 3, s, s]`` to features ``[B, d]`` (extra
            trailing dimensions are flattened). It is moved to ``device`` and run in
            eval mode; its training mode is restored afterwards.
        dataset: Yields ``(image, label)`` with a uint8 ``[3, H, W]`` tensor or a PIL image.
        batch_size: Images per forward pass.
        device: Where the backbone runs.
        num_workers: DataLoader worker processes.
        transform: Per-image preprocessing returning ``[3, s, s]`` (uint8 or float in
            [0, 1]); :class:`EvalTransform` ``(image_size)`` by default.
        image_size: Side of the center crop when ``transform`` is omitted.
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation std.
        cache_dir: Directory of the on-disk cache; no caching when omitted.
        cache_key: Names the dataset and split in the cache key (``"cifar10/train"``);
            the dataset's class name and length when omitted.

    Returns:
        A :class:`FeatureSet` ``(features, labels, images_per_second)``.

    Raises:
        DataError: If the dataset is empty or yields images of the wrong shape.
    """
    if len(dataset) == 0:
        raise DataError("cannot extract features from an empty dataset")
    transform = transform or EvalTransform(image_size)
    path = None
    if cache_dir is not None:
        key = cache_key or f"{type(dataset).__name__}:{len(dataset)}"
        path = cache_path(cache_dir, backbone, key, transform, mean, std)
        if path.is_file():
            stored = load_file(str(path))
            logger.info("loaded %d cached features from %s", len(stored["labels"]), path)
            return FeatureSet(stored["features"], stored["labels"], None)

    result = _forward(backbone, _Transformed(dataset, transform), mean, std, batch_size,
                      torch.device(device), num_workers)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_cache(path, result)
    return result


def _forward(
    backbone: nn.Module, dataset: Dataset, mean: Sequence[float], std: Sequence[float],
    batch_size: int, device: torch.device, num_workers: int,
) -> FeatureSet:
    """Run the backbone (in eval mode, its mode restored after) over preprocessed images."""
    was_training = backbone.training
    backbone.to(device).eval()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    features, labels = [], []
    start = time.perf_counter()
    try:
        for images, targets in loader:
            batch = normalize_batch(images.to(device, non_blocking=True), mean, std)
            features.append(backbone(batch).flatten(1).float().cpu())
            labels.append(targets.long())
    finally:
        backbone.train(was_training)
    elapsed = time.perf_counter() - start
    result = FeatureSet(torch.cat(features), torch.cat(labels), len(dataset) / elapsed)
    logger.info("extracted %d features at %.1f images/s", len(dataset), result.images_per_second)
    return result


def _save_cache(path: Path, result: FeatureSet) -> None:
    """Write features and labels to the cache file (through a temporary file)."""
    tmp = path.with_suffix(".tmp")
    try:
        with writing(path, "feature cache"):
            save_file({"features": result.features.contiguous(), "labels": result.labels},
                      str(tmp))
            tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
