"""The device views pipeline on CUDA: the same views as the CPU workers, JPEGs decoded there."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2.functional import rgb_to_grayscale

from moeheads.data import create_dataset
from moeheads.views import ViewSampler, apply_geometric, build_input_pipeline, center_view
from moeheads.views.device import make_views
from moeheads.views.jpeg import decode_images
from tests.gpu import DEVICE, needs_device

pytestmark = [pytest.mark.gpu, needs_device]


@pytest.mark.parametrize(
    ("height", "width", "size"),
    [(96, 96, 96), (375, 500, 224), (1200, 900, 64), (28, 28, 24)],
)
def test_views_on_the_device_equal_the_cpu_kernel(height: int, width: int, size: int) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, height, width), dtype=torch.uint8, generator=g)
    sampler = ViewSampler(size=size)
    params = torch.stack([sampler.sample(2, height, width, g)[0] for _ in range(4)], dim=1)
    views, originals = make_views(images.to(DEVICE), params.to(DEVICE), size, method="taps")
    expected = torch.stack([apply_geometric(images[b], params[:, b], size) for b in range(4)], 1)
    assert views.device.type == DEVICE.type
    assert torch.equal(views.cpu(), expected)
    assert torch.equal(originals.cpu(), torch.stack([center_view(i, size) for i in images]))


def test_device_pipeline_on_the_device_equals_cpu_workers() -> None:
    dataset = create_dataset("synthetic_shapes", length=32, size=40)
    sampler = ViewSampler(size=32)
    common = {"num_views": 2, "original": True, "seed": 7, "index_sampler": range(32),
              "batch_size": 16}
    device = build_input_pipeline(dataset, sampler, pipeline="auto" if DEVICE.type == "cuda"
                                  else "device", device=DEVICE, **common)
    workers = build_input_pipeline(dataset, sampler, pipeline="workers", device="cpu", **common)
    assert device.kind == "device-memory"
    for pipeline in (device, workers):
        pipeline.views.set_epoch(1)
    for a, b in zip(device.loader, workers.loader, strict=True):
        assert a.views.device.type == DEVICE.type
        for field in ("views", "params", "jitter_order", "original", "labels"):
            assert torch.equal(getattr(a, field).cpu(), getattr(b, field)), field


def _jpeg(seed: int, height: int, width: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_jpegs_decoded_on_the_device_are_close_to_the_cpu_decoder() -> None:
    files = [_jpeg(i, *shape) for i, shape in enumerate([(64, 80), (75, 50), (64, 80)])]
    data = [torch.frombuffer(bytearray(f), dtype=torch.uint8) for f in files]
    on_device = decode_images(data, DEVICE)
    on_cpu = decode_images(data, "cpu")
    for a, b in zip(on_device, on_cpu, strict=True):
        assert a.device.type == DEVICE.type and a.shape == b.shape and a.dtype == torch.uint8
        diff = (a.cpu().int() - b.int()).abs()
        luma = float((rgb_to_grayscale(a.cpu().float()) - rgb_to_grayscale(b.float())).abs().mean())
        print(f"device vs CPU JPEG decode: max {int(diff.max())}, mean "
              f"{float(diff.float().mean()):.3f}, luma mean {luma:.3f}")
        # nvJPEG upsamples chroma differently from libjpeg-turbo: on these small colourful
        # images the RGB mean differs by 5.3 levels (H200, torch 2.11), mostly in colour.
        # Luma differs by the IDCT alone; a one-pixel shift gives ~6, swapped channels ~11
        assert luma < 3.0 and int(diff.max()) <= 64
