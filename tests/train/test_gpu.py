"""The CUDA-only parts of training, for the first GPU run (skipped without CUDA).

    pytest -m gpu tests/train/test_gpu.py
"""

from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from moeheads.recipe.schema import Recipe
from moeheads.rundir.checkpoint import latest_valid_checkpoint
from moeheads.runtime.sync_batchnorm import convert_sync_batchnorm
from moeheads.train.builder import native_bf16, resolve_precision
from moeheads.train.engine import Trainer, configure_determinism
from moeheads.views import Photometric, ViewSampler
from tests.train.recipes import tiny_recipe

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _run(tmp_path: Path, **changes: object) -> Path:
    options = {"trainer__device": "cuda", "monitor__knn_every": 0, "monitor__cca_every": 0,
               **changes}
    recipe = Recipe.model_validate(tiny_recipe(tmp_path, **options))
    Trainer(recipe, resume="never", console=Console(quiet=True)).run()
    return recipe.run_dir


def _weights(run: Path) -> dict[str, torch.Tensor]:
    info = latest_valid_checkpoint(run)
    assert info is not None
    return load_file(str(info.model_path))


def test_auto_precision_on_this_gpu() -> None:
    dtype = resolve_precision("auto", torch.device("cuda"))
    major = torch.cuda.get_device_capability()[0]
    assert native_bf16(torch.device("cuda")) == (major >= 8)
    assert dtype == (torch.bfloat16 if major >= 8 else torch.float16)


@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_autocast_and_channels_last_train(tmp_path: Path, precision: str) -> None:
    run = _run(tmp_path, trainer__precision=precision, trainer__channels_last=True)
    weights = _weights(run)
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def test_cudnn_benchmark_unless_deterministic(tmp_path: Path) -> None:
    try:
        _run(tmp_path / "fast", trainer__epochs=1)
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
        _run(tmp_path / "a", trainer__epochs=1, trainer__deterministic=True,
             trainer__precision="fp32")
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        _run(tmp_path / "b", trainer__epochs=1, trainer__deterministic=True,
             trainer__precision="fp32")
    finally:
        configure_determinism(False)
    a, b = _weights(tmp_path / "a" / "tiny"), _weights(tmp_path / "b" / "tiny")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_sync_batchnorm_conversion_keeps_eval_outputs_on_cuda() -> None:
    from tests.runtime.test_sync_batchnorm import _warmed

    model = _warmed("timm:regnety_004").cuda()
    images = torch.randn(2, 3, 64, 64, device="cuda")
    with torch.no_grad():
        before = model(images)
        after = convert_sync_batchnorm(model, torch.device("cuda"))(images)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert any(type(m).__name__ == "SyncBatchNormAct" for m in model.modules())


def test_photometric_on_cuda_selects_rows_without_syncs() -> None:
    sampler = ViewSampler(size=24, jitter_p=0.8, blur_p=0.5, grayscale_p=0.3)
    params, order = sampler.sample(32, 24, 24, torch.Generator().manual_seed(2))
    images = torch.randint(0, 256, (32, 3, 24, 24), dtype=torch.uint8)
    expected = Photometric.from_options(sampler.options)(images, params, order)
    photometric = Photometric.from_options(sampler.options).cuda()
    gpu_images, gpu_params, gpu_order = images.cuda(), params.cuda(), order.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = photometric(gpu_images, gpu_params, gpu_order)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.testing.assert_close(out.cpu(), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("byol", [False, True])
def test_training_steps_never_synchronise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, byol: bool
) -> None:
    from moeheads.runtime.distributed import DistContext
    from moeheads.train.builder import build_training, wrap_network
    from moeheads.train.loop import TrainLoop

    recipe = Recipe.model_validate(tiny_recipe(
        tmp_path, trainer__device="cuda", trainer__precision="bf16", trainer__epochs=1,
        trainer__log_every=1000, trainer__accumulate=2, trainer__grad_clip=1.0,
        trainer__channels_last=True, heads__router={"name": "topk", "k": 2},
        monitor__knn_every=0, monitor__cca_every=0,
        **({"tasks__inv": {"name": "byol", "hidden_dim": 16}} if byol else {}),
    ))
    recipe.run_dir.mkdir(parents=True)
    ctx = DistContext(device=torch.device("cuda", torch.cuda.current_device()))
    parts = build_training(recipe, ctx)
    wrap_network(parts, compile=False)
    loop = TrainLoop(recipe, recipe.run_dir, Console(quiet=True), parts)
    step = TrainLoop._train_step
    calls = []

    def strict(self: TrainLoop, batch: object, last: bool) -> object:
        torch.cuda.set_sync_debug_mode("error")
        try:
            return step(self, batch, last)
        finally:
            torch.cuda.set_sync_debug_mode(0)
            calls.append(last)

    monkeypatch.setattr(TrainLoop, "_train_step", strict)
    metrics = loop.train(0, 0, 0)
    assert len(calls) >= 4 and metrics["loss"] > 0
