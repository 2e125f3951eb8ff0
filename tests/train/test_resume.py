"""Resuming reproduces an uninterrupted run exactly (CPU, deterministic settings)."""

import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from moeheads.assembly.model import PretrainModel
from moeheads.cli import main
from moeheads.errors import MoeheadsError
from moeheads.recipe.schema import Recipe
from moeheads.rundir.checkpoint import latest_valid_checkpoint
from moeheads.train.engine import InterruptedRunError, NonFiniteLossError, Trainer
from moeheads.train.loop import TrainLoop
from tests.train.recipes import tiny_recipe, write_recipe


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
    # no checkpoint of the exploding run exists, and the message does not claim one
    with pytest.raises(NonFiniteLossError, match=r"no checkpoint had been written yet.*"
                       r"--set optimizer.lr=1e\+29 --resume never"):
        Trainer(exploding, resume="never").run()
    assert isinstance(NonFiniteLossError("x"), MoeheadsError)
    assert latest_valid_checkpoint(recipe.run_dir).path == before.path


def test_nan_after_a_checkpoint_names_it_and_its_command_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The loss turns NaN in epoch 2: the message names the epoch-1 checkpoint and a command
    that continues from it with a lower learning rate; that command then runs."""
    recipe_file = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(
        tmp_path / "runs", trainer__epochs=2, monitor__knn_every=0, monitor__cca_every=0))
    forward = PretrainModel.forward

    def nan_in_epoch_two(model: PretrainModel, batch):
        out = forward(model, batch)
        nan_in_epoch_two.calls += 1
        if nan_in_epoch_two.calls > 5:
            out.loss.loss = out.loss.loss * float("nan")
        return out

    nan_in_epoch_two.calls = 0
    monkeypatch.setattr(PretrainModel, "forward", nan_in_epoch_two)
    monkeypatch.setattr(sys, "argv", ["moeheads", "run", str(recipe_file)])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    message = capsys.readouterr().err.replace("\n", "")
    command = re.search(r"moeheads run (\S+) --set (\S+) --resume (\S+) --allow-recipe-change",
                        message)
    assert command is not None, message
    assert command.group(3).endswith("step-000000004.json")  # the end of epoch 1
    monkeypatch.setattr(PretrainModel, "forward", forward)
    monkeypatch.setattr(sys, "argv", ["moeheads", "run", command.group(1), "--set",
                                      command.group(2), "--resume", command.group(3),
                                      "--allow-recipe-change"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code in (0, None)
    assert latest_valid_checkpoint(tmp_path / "runs" / "tiny").step == 8


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
            os.kill(os.getpid(), signal.SIGINT)

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
    # gradient norms need a second backward, which a compiled graph cannot run
    assert "grad_norm" in (eager.run_dir / "metrics.jsonl").read_text()
    assert "grad_norm" not in (compiled.run_dir / "metrics.jsonl").read_text()
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
