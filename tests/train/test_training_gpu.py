"""Training on CUDA: bf16, channels_last and compile agree with eager; grouped BatchNorm (cuDNN)."""

import copy
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from moeheads.assembly.build import build_model
from moeheads.data import create_dataset
from moeheads.numerics.grouped_norm import grouped_batch_norm
from moeheads.recipe.schema import Recipe
from moeheads.train.engine import Trainer
from moeheads.train.loop import channels_last
from moeheads.views import Photometric, ViewSampler, build_input_pipeline
from tests.gpu import DEVICE, needs_device
from tests.train.recipes import tiny_recipe

pytestmark = [pytest.mark.gpu, needs_device]

needs_compiler = pytest.mark.skipif(
    DEVICE.type == "cpu" and shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="torch.compile's CPU backend needs a C compiler",
)


def _recipe(tmp_path: Path, **changes) -> Recipe:
    return Recipe.model_validate(tiny_recipe(
        tmp_path, backbone={"name": "torchvision:resnet18"}, trainer__device=str(DEVICE),
        monitor__knn_every=0, monitor__cca_every=0, **changes,
    ))


def _batch(recipe: Recipe):
    dataset = create_dataset("synthetic_shapes", length=32, size=16)
    sampler = ViewSampler(recipe.views.view_options())
    inputs = build_input_pipeline(dataset, sampler, num_views=2, original=True, seed=0,
                                  index_sampler=range(32), batch_size=32, device=DEVICE,
                                  pipeline="device")
    return Photometric.from_options(sampler.options).prepare(next(iter(inputs.loader)), DEVICE)


def _loss_and_grads(model: nn.Module, batch, bf16: bool, layout: bool
                    ) -> tuple[float, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    if layout:
        batch = copy.copy(batch)
        batch.views, batch.original = channels_last(batch.views), channels_last(batch.original)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=bf16):
        loss = model(batch).loss.loss
    loss.backward()
    grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    return float(loss.detach()), torch.cat(grads).float()


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@needs_compiler
def test_bf16_channels_last_and_compile_agree_with_eager(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    torch.manual_seed(0)
    reference = build_model(recipe, (16, 16)).to(DEVICE).train()
    batch = _batch(recipe)
    fp32_loss, fp32_grads = _loss_and_grads(copy.deepcopy(reference), batch, False, False)

    eager = copy.deepcopy(reference)
    eager.encoder.backbone.to(memory_format=torch.channels_last)
    bf16_loss, bf16_grads = _loss_and_grads(eager, batch, True, True)
    compiled = copy.deepcopy(reference)
    compiled.encoder.backbone.to(memory_format=torch.channels_last)
    for module in (compiled.encoder.backbone, compiled.encoder.heads.experts,
                   compiled.encoder.heads.router):
        module.compile()
    compiled_loss, compiled_grads = _loss_and_grads(compiled, batch, True, True)
    print(f"loss fp32 {fp32_loss:.5f}  bf16+channels_last {bf16_loss:.5f}  "
          f"compiled {compiled_loss:.5f}; gradient cosine bf16/fp32 "
          f"{_cosine(bf16_grads, fp32_grads):.4f}, compiled/eager "
          f"{_cosine(compiled_grads, bf16_grads):.4f}")
    assert bf16_loss == pytest.approx(fp32_loss, rel=3e-2)
    assert compiled_loss == pytest.approx(bf16_loss, rel=1e-2)
    assert _cosine(bf16_grads, fp32_grads) > 0.95  # 0.980 in a CPU dry run
    assert _cosine(compiled_grads, bf16_grads) > 0.99


@needs_compiler
def test_a_run_with_the_paper_settings_trains(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, trainer__epochs=1, trainer__precision="bf16",
                     trainer__channels_last=True, trainer__compile=True,
                     views__pipeline="auto" if DEVICE.type == "cuda" else "device")
    result = Trainer(recipe, resume="never").run()
    assert torch.isfinite(torch.tensor(result.final_metrics["loss"]))
    assert result.backbone is not None and result.backbone.is_file()


@pytest.mark.parametrize("shape", [(64, 3 * 32), (64, 3 * 16, 8)])
def test_grouped_batch_norm_with_cudnn_equals_groups_in_turn(shape: tuple[int, ...]) -> None:
    torch.backends.cudnn.enabled = True
    norm = nn.BatchNorm1d(shape[1] // 3).to(DEVICE).train()
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    reference = copy.deepcopy(norm)
    x = (torch.randn(shape, device=DEVICE) * 2 + 1).requires_grad_()
    out = grouped_batch_norm(norm, x, 3, group_major=True)
    parts = x.detach().clone().requires_grad_().chunk(3, dim=1)
    expected = torch.cat([reference(p) for p in parts], dim=1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(norm.weight.grad, reference.weight.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    torch.testing.assert_close(norm.running_var, reference.running_var)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        low = grouped_batch_norm(norm, x.detach(), 3, group_major=True)
    assert norm.running_mean.dtype == torch.float32
    torch.testing.assert_close(low.float(), grouped_batch_norm(norm, x.detach(), 3, True),
                               atol=5e-2, rtol=5e-2)
