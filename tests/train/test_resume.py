"""Resuming reproduces an uninterrupted run exactly (CPU, deterministic settings)."""

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from moeheads.config import Recipe
from moeheads.errors import MoeheadsError
from moeheads.train.checkpoint import latest_valid_checkpoint
from moeheads.train.engine import InterruptedRunError, NonFiniteLossError, Trainer
from moeheads.train.loop import TrainLoop
from tests.train.recipes import tiny_recipe


def _weights(run: Path) -> dict[str, torch.Tensor]:
    info = latest_valid_checkpoint(run)
    assert info is not None
    return load_file(str(info.model_path))


def test_resume_after_a_kill_equals_a_straight_run(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(tiny_recipe(
        tmp_path / "a", trainer__epochs=4, trainer__checkpoint_every=2,
        trainer__deterministic=True, monitor__knn_every=0, monitor__cca_every=0,
        heads__router={"name": "topk", "k": 2},  # noisy gates: RNG state must be restored
    ))
    Trainer(recipe, resume="never").run()
    straight = recipe.run_dir
    # a copy of the run as it was when killed right after the epoch-2 checkpoint
    killed = tmp_path / "b" / "tiny"
    shutil.copytree(straight, killed)
    final = latest_valid_checkpoint(killed)
    for path in (final.path, final.model_path, final.state_path):
        path.unlink()
    assert latest_valid_checkpoint(killed).epoch == 2
    resumed = recipe.model_copy(update={"output_dir": tmp_path / "b"})
    Trainer(resumed, resume="auto").run()
    a, b = _weights(straight), _weights(killed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_nan_loss_stops_with_message_and_keeps_checkpoint(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(tiny_recipe(tmp_path, trainer__epochs=1))
    Trainer(recipe, resume="never").run()
    before = latest_valid_checkpoint(recipe.run_dir)
    exploding = Recipe.model_validate(tiny_recipe(tmp_path, trainer__epochs=1,
                                                  optimizer__lr=1e30, name="nan"))
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        Trainer(exploding, resume="never").run()
    assert isinstance(NonFiniteLossError("x"), MoeheadsError)
    assert latest_valid_checkpoint(recipe.run_dir).path == before.path


def test_ctrl_c_writes_a_checkpoint_and_resume_continues_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"trainer__epochs": 2, "trainer__deterministic": True,
               "monitor__knn_every": 0, "monitor__cca_every": 0}
    straight = Recipe.model_validate(tiny_recipe(tmp_path / "a", **options))
    Trainer(straight, resume="never").run()

    interrupted = Recipe.model_validate(tiny_recipe(tmp_path / "b", **options))
    original_step = TrainLoop._optimizer_step

    def step_then_ctrl_c(loop: TrainLoop) -> None:
        original_step(loop)
        if loop.global_step == 6:  # the middle of the second epoch (4 steps per epoch)
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainLoop, "_optimizer_step", step_then_ctrl_c)
    with pytest.raises(InterruptedRunError, match="--resume auto"):
        Trainer(interrupted, resume="never").run()
    info = latest_valid_checkpoint(interrupted.run_dir)
    assert (info.step, info.epoch) == (6, 1)

    monkeypatch.setattr(TrainLoop, "_optimizer_step", original_step)
    Trainer(interrupted, resume="auto").run()
    a, b = _weights(straight.run_dir), _weights(interrupted.run_dir)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_bf16_channels_last_and_accumulation_train(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(tiny_recipe(
        tmp_path, trainer__epochs=1, trainer__precision="bf16", trainer__channels_last=True,
        trainer__accumulate=2, trainer__grad_clip=1.0, monitor__knn_every=0,
        monitor__cca_every=0,
    ))
    result = Trainer(recipe, resume="never").run()
    assert result.steps == 4  # 64 images, batch 16 per optimiser step (2 micro-batches of 8)
    assert torch.isfinite(torch.tensor(result.final_metrics["loss"]))


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile's CPU backend needs a C compiler")
def test_compiled_run_trains_like_eager(tmp_path: Path) -> None:
    changes = {"trainer__epochs": 1, "monitor__knn_every": 0, "monitor__cca_every": 0}
    eager = Recipe.model_validate(tiny_recipe(tmp_path / "eager", **changes))
    compiled = Recipe.model_validate(
        tiny_recipe(tmp_path / "compiled", trainer__compile=True, **changes)
    )
    Trainer(eager, resume="never").run()
    Trainer(compiled, resume="never").run()
    a, b = _weights(eager.run_dir), _weights(compiled.run_dir)
    assert a.keys() == b.keys()
    for key in a:  # the same four steps; compiled kernels only reorder float operations
        torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-4, msg=key)


def test_device_views_train_exactly_like_workers_and_resume_exactly(tmp_path: Path) -> None:
    options = {"trainer__epochs": 2, "trainer__checkpoint_every": 1,
               "trainer__deterministic": True, "monitor__knn_every": 0,
               "monitor__cca_every": 0}
    workers = Recipe.model_validate(tiny_recipe(tmp_path / "w", **options))
    device = Recipe.model_validate(tiny_recipe(tmp_path / "d", views__pipeline="device",
                                               **options))
    assert workers.hash() == device.hash()  # the pipeline does not change the recipe's hash
    Trainer(workers, resume="never").run()
    Trainer(device, resume="never").run()
    a, b = _weights(workers.run_dir), _weights(device.run_dir)
    for key in a:  # bit-exact views, so the same training
        assert torch.equal(a[key], b[key]), key
    # resume the device run from its epoch-1 checkpoint
    killed = tmp_path / "k" / "tiny"
    shutil.copytree(device.run_dir, killed)
    final = latest_valid_checkpoint(killed)
    for path in (final.path, final.model_path, final.state_path):
        path.unlink()
    assert latest_valid_checkpoint(killed).epoch == 1
    Trainer(device.model_copy(update={"output_dir": tmp_path / "k"}), resume="auto").run()
    c = _weights(killed)
    for key in a:
        assert torch.equal(a[key], c[key]), key
