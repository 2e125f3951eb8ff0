"""Views made on the device equal the DataLoader workers' views (CPU)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from moeheads.data import create_dataset
from moeheads.data.arrays import ArrayImages
from moeheads.errors import ConfigError, DataError
from moeheads.views import (
    DeviceViews,
    ViewSampler,
    ViewsDataset,
    apply_geometric,
    build_input_pipeline,
    center_view,
    collate_views,
    make_views,
)
from moeheads.views.jpeg import decode_images, is_jpeg_dataset


def _params(sampler: ViewSampler, batch: int, height: int, width: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.stack([sampler.sample(2, height, width, g)[0] for _ in range(batch)], dim=1)


@pytest.mark.parametrize("method", ["taps", "loop"])
@pytest.mark.parametrize(
    ("height", "width", "size", "antialias"),
    [(24, 24, 24, True), (30, 41, 16, True), (50, 20, 12, True), (90, 60, 10, True),
     (30, 41, 16, False), (12, 12, 20, True)],
)
def test_batched_views_equal_per_image_views(
    method: str, height: int, width: int, size: int, antialias: bool
) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, height, width), dtype=torch.uint8, generator=g)
    sampler = ViewSampler(size=size, antialias=antialias, blur_kernel_size=3)
    params = _params(sampler, 6, height, width)
    views, originals = make_views(images, params, size, antialias, method=method)
    expected = torch.stack([apply_geometric(images[b], params[:, b], size, antialias)
                            for b in range(6)], dim=1)
    expected_original = torch.stack([center_view(image, size, antialias) for image in images])
    # bit-exact: the same fixed-point arithmetic as PyTorch's uint8 resize kernel
    assert torch.equal(views, expected)
    assert torch.equal(originals, expected_original)


def test_float_images_are_resampled_in_float() -> None:
    images = torch.rand(3, 3, 20, 28)
    params = _params(ViewSampler(size=16, blur_kernel_size=3), 3, 20, 28)
    views, originals = make_views(images, params, 16, method="taps")
    expected = torch.stack([apply_geometric(images[b], params[:, b], 16) for b in range(3)], 1)
    torch.testing.assert_close(views, expected, atol=1e-5, rtol=0)
    assert originals is not None and originals.dtype == torch.float32


def test_single_channel_images_become_three_channels() -> None:
    images = torch.randint(0, 256, (4, 1, 20, 20), dtype=torch.uint8)
    params = _params(ViewSampler(size=16, blur_kernel_size=3), 4, 20, 20)
    for method in ("taps", "loop"):
        views, originals = make_views(images, params, 16, method=method)
        expected = torch.stack([apply_geometric(images[b].expand(3, -1, -1), params[:, b], 16)
                                for b in range(4)], dim=1)
        assert torch.equal(views, expected) and originals.shape == (4, 3, 16, 16)


def _worker_batch(dataset, sampler: ViewSampler, indices: list[int], epoch: int):
    views = ViewsDataset(dataset, sampler, num_views=2, seed=5)
    views.set_epoch(epoch)
    return collate_views([views[i] for i in indices])


@pytest.mark.parametrize("method", ["taps", "loop"])
def test_device_views_equal_worker_views(method: str) -> None:
    dataset = create_dataset("synthetic_shapes", length=12, size=20)
    sampler = ViewSampler(size=16, blur_kernel_size=3)
    maker = DeviceViews(sampler, num_views=2, seed=5, method=method)
    maker.set_epoch(3)
    indices = [7, 2, 11, 0]
    batch = maker(dataset.stacked_images()[indices], indices, dataset.targets[indices])
    expected = _worker_batch(dataset, sampler, indices, epoch=3)
    for field in ("views", "params", "jitter_order", "original", "labels"):
        assert torch.equal(getattr(batch, field), getattr(expected, field)), field


def test_images_of_different_sizes_are_grouped() -> None:
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
              for h, w in [(20, 30), (25, 25), (20, 30), (40, 18)]]
    dataset = [(image, 1) for image in images]
    sampler = ViewSampler(size=16, blur_kernel_size=3)
    batch = DeviceViews(sampler, seed=5)(images, [0, 1, 2, 3], torch.ones(4, dtype=torch.long))
    expected = _worker_batch(dataset, sampler, [0, 1, 2, 3], epoch=0)
    assert torch.equal(batch.views, expected.views)
    assert torch.equal(batch.original, expected.original)
    assert torch.equal(batch.params, expected.params)


def test_array_datasets_stack_their_images() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 3, 9, 7), dtype=np.uint8)
    for layout, array in [("NCHW", pixels), ("NCWH", pixels.transpose(0, 1, 3, 2)),
                          ("NHWC", pixels.transpose(0, 2, 3, 1))]:
        dataset = ArrayImages(array, [0] * 5, layout)
        stacked = dataset.stacked_images(chunk=2)
        assert all(torch.equal(stacked[i], dataset[i][0]) for i in range(5)), layout
    gray = ArrayImages(pixels[:, 0], [0] * 5, "NHW").stacked_images()
    assert gray.shape == (5, 1, 9, 7)
    shapes = create_dataset("synthetic_shapes", length=6, size=8)
    assert torch.equal(shapes.subset([4, 1]).stacked_images()[0], shapes[4][0])


def _loader_batches(pipeline, epoch: int) -> list:
    pipeline.views.set_epoch(epoch)
    return list(pipeline.loader)


def test_pipeline_choice_on_cpu(tmp_path: Path) -> None:
    dataset = create_dataset("synthetic_shapes", length=16, size=20)
    sampler = ViewSampler(size=16, blur_kernel_size=3)
    common = {"num_views": 2, "original": True, "seed": 5, "index_sampler": range(16),
              "batch_size": 8, "device": "cpu"}
    assert build_input_pipeline(dataset, sampler, pipeline="auto", **common).kind == "workers"
    workers = build_input_pipeline(dataset, sampler, pipeline="workers", **common)
    device = build_input_pipeline(dataset, sampler, pipeline="device", **common)
    assert device.kind == "device-memory" and len(device.loader) == 2
    for a, b in zip(_loader_batches(workers, 2), _loader_batches(device, 2), strict=True):
        assert torch.equal(a.views, b.views) and torch.equal(a.params, b.params)
        assert torch.equal(a.original, b.original) and torch.equal(a.labels, b.labels)
    png = tmp_path / "png"
    png.mkdir()
    Image.new("RGB", (9, 9)).save(png / "a.png")
    with pytest.raises(ConfigError, match=r"views\.pipeline"):
        build_input_pipeline(create_dataset("folder", root=png), sampler, pipeline="device",
                             **common)


def _write_jpegs(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        h, w = (24, 32) if i % 3 else (30, 22)
        base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((w, h), Image.BILINEAR)  # smooth, JPEG-friendly
        (folder / f"c{i % 2}").mkdir(exist_ok=True)
        image.save(folder / f"c{i % 2}" / f"{i}.jpg", quality=90)


def test_jpeg_files_decoded_in_the_process_match_the_workers(tmp_path: Path) -> None:
    _write_jpegs(tmp_path, 8)
    dataset = create_dataset("folder", root=tmp_path)
    assert is_jpeg_dataset(dataset)
    data = [torch.frombuffer(bytearray(dataset.encoded_file(i).read_bytes()), dtype=torch.uint8)
            for i in range(8)]
    decoded = decode_images(data, "cpu")
    for i, image in enumerate(decoded):  # torchvision's libjpeg decodes as PIL does
        assert torch.equal(image, dataset[i][0])
    sampler = ViewSampler(size=16, blur_kernel_size=3)
    common = {"num_views": 2, "original": True, "seed": 5, "index_sampler": [5, 0, 3, 6],
              "batch_size": 2, "device": "cpu"}
    device = build_input_pipeline(dataset, sampler, pipeline="device", **common)
    workers = build_input_pipeline(dataset, sampler, pipeline="workers", **common)
    assert device.kind == "device-jpeg"
    for a, b in zip(_loader_batches(workers, 1), _loader_batches(device, 1), strict=True):
        assert torch.equal(a.views, b.views) and torch.equal(a.original, b.original)
        assert torch.equal(a.params, b.params) and torch.equal(a.labels, b.labels)


def test_undecodable_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    data = [torch.frombuffer(bytearray(bad.read_bytes()), dtype=torch.uint8)]
    with pytest.raises(DataError, match=r"bad\.jpg"):
        decode_images(data, "cpu", [str(bad)])


def test_only_unpinned_host_images_headed_for_a_gpu_are_pinned() -> None:
    from moeheads.views.device_views import needs_pinning

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    host = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    # images already on an accelerator (found on an H200: images on cuda:0 for the
    # device "cuda" were sent to pin_memory, which refuses them)
    assert not needs_pinning(host.to("meta"), cuda)
    assert not needs_pinning(host, cpu)
    if torch.cuda.is_available():
        assert needs_pinning(host, cuda)
        assert not needs_pinning(host.cuda(), cuda)
        assert not needs_pinning(host.pin_memory(), cuda)


def test_neutral_jitter_factors_are_made_where_the_factors_are() -> None:
    from moeheads.views.layout import NEUTRAL_JITTER
    from moeheads.views.photometric import neutral_factors

    made = neutral_factors(torch.zeros(3, 4, dtype=torch.float64))
    assert made.dtype == torch.float64 and made.tolist() == list(NEUTRAL_JITTER)
    assert neutral_factors(torch.zeros(3, 4, device="meta")).device.type == "meta"
