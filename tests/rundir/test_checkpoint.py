import hashlib
import json
import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from moeheads.errors import CheckpointError
from moeheads.rundir.checkpoint import (
    CheckpointInfo,
    CheckpointWarning,
    TrainingState,
    latest_valid_checkpoint,
    load_checkpoint,
    save_checkpoint,
    scan_checkpoints,
    verify_checkpoint,
)


class Net(nn.Module):
    """Backbone with BatchNorm buffers and a head whose output layer is tied."""

    def __init__(self, width: int = 6) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width), nn.ReLU())
        self.head = nn.Linear(width, width)
        self.tied = nn.Linear(width, width)
        self.tied.weight = self.head.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tied(self.head(self.backbone(x)))


def _training_state(steps: int = 3) -> tuple[Net, torch.optim.Optimizer, object, object]:
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / 10)))
    scaler = torch.amp.GradScaler("cpu", init_scale=512.0, growth_interval=7)
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(8, 4)).square().mean().backward()
        opt.step()
        sched.step()
    return model, opt, sched, scaler


def _save(run: Path, step: int, model: nn.Module | None = None, keep_last: int | None = 3,
          overwrite: bool = False, **kwargs) -> CheckpointInfo:
    state = TrainingState(model or Net(), step=step, epoch=step // 10, **kwargs)
    return save_checkpoint(run, state, keep_last=keep_last, overwrite=overwrite)


def _rehash(info: CheckpointInfo) -> None:
    """Rewrite the sidecar so that it matches the files as they are now."""
    data = json.loads(info.path.read_text())
    for key in ("model", "state"):
        file = info.path.parent / data["files"][key]["name"]
        data["files"][key]["bytes"] = file.stat().st_size
        data["files"][key]["sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
    info.path.write_text(json.dumps(data))


def test_round_trip_restores_everything(tmp_path: Path) -> None:
    model, opt, sched, scaler = _training_state()
    gen = torch.Generator().manual_seed(3)
    info = save_checkpoint(tmp_path, TrainingState(
        model, step=3, epoch=1, optimizer=opt, scheduler=sched, scaler=scaler,
        recipe_hash="abc", generators={"loader": gen}, extra={"best": 0.5},
    ))  # fmt: skip
    expected = (torch.rand(3), random.random(), np.random.rand(), torch.rand(2, generator=gen))

    model2, opt2, sched2, scaler2 = Net(), None, None, torch.amp.GradScaler("cpu")
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0)
    gen2 = torch.Generator()
    loaded = load_checkpoint(
        tmp_path, model2, opt2, sched2, scaler2, generators={"loader": gen2}, recipe_hash="abc"
    )
    assert loaded.info == info and loaded.extra == {"best": 0.5}
    for key, value in model.state_dict().items():
        torch.testing.assert_close(model2.state_dict()[key], value, rtol=0, atol=0)
    assert model2.tied.weight is model2.head.weight
    assert model2.backbone[1].num_batches_tracked.item() == 3
    for p, p2 in zip(model.parameters(), model2.parameters(), strict=True):
        torch.testing.assert_close(
            opt2.state[p2]["momentum_buffer"], opt.state[p]["momentum_buffer"]
        )
    assert sched2.state_dict()["last_epoch"] == 3 and sched2.get_last_lr() == sched.get_last_lr()
    assert scaler2.state_dict() == scaler.state_dict()
    actual = (torch.rand(3), random.random(), np.random.rand(), torch.rand(2, generator=gen2))
    torch.testing.assert_close(actual[0], expected[0])
    assert actual[1:3] == expected[1:3]
    torch.testing.assert_close(actual[3], expected[3])


def test_sidecar_records_files_and_metadata(tmp_path: Path) -> None:
    info = _save(tmp_path, 12, recipe_hash="r1", metadata={"architecture": "mlp"})
    data = json.loads(info.path.read_text())
    assert info.path == tmp_path / "checkpoints" / "step-000000012.json"
    assert {data["step"], data["epoch"], data["recipe_hash"]} == {12, 1, "r1"}
    assert data["moeheads_version"] and data["created"].endswith("+00:00")
    assert data["files"]["model"]["bytes"] == info.model_path.stat().st_size
    assert len(data["files"]["state"]["sha256"]) == 64
    assert data["metadata"] == {"architecture": "mlp"}
    assert verify_checkpoint(info.path) == info


def test_crash_before_rename_keeps_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _save(tmp_path, 1)
    before = sorted(p.name for p in first.path.parent.iterdir())

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(CheckpointError, match=r"step-000000002\.json"):
        _save(tmp_path, 2)
    monkeypatch.undo()
    assert sorted(p.name for p in first.path.parent.iterdir()) == before
    assert latest_valid_checkpoint(tmp_path) == verify_checkpoint(first.path)


def test_failed_overwrite_keeps_the_valid_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _save(tmp_path, 5)
    with pytest.raises(CheckpointError, match="overwrite=True"):
        _save(tmp_path, 5)
    real_replace = os.replace

    def fail_on_sidecar(src: object, dst: object) -> None:
        if str(dst).endswith(".json"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_sidecar)
    with pytest.raises(CheckpointError, match="disk full"):
        _save(tmp_path, 5, overwrite=True)
    monkeypatch.undo()
    assert verify_checkpoint(first.path) == first
    second = _save(tmp_path, 5, overwrite=True)
    assert second.model != first.model and not first.model_path.exists()
    assert len(list(first.path.parent.iterdir())) == 3


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "delete_sidecar", "corrupt_json",
                                    "delete_state"])  # fmt: skip
def test_damaged_checkpoint_falls_back_to_previous(tmp_path: Path, damage: str) -> None:
    good = _save(tmp_path, 1)
    bad = _save(tmp_path, 2)
    if damage == "truncate":
        data = bad.model_path.read_bytes()
        bad.model_path.write_bytes(data[: len(data) // 2])
    elif damage == "flip_byte":
        data = bytearray(bad.model_path.read_bytes())
        data[-3] ^= 0xFF
        bad.model_path.write_bytes(bytes(data))
    elif damage == "delete_sidecar":
        bad.path.unlink()
    elif damage == "corrupt_json":
        bad.path.write_text('{"format": "moeheads-checkpoint", "step": ')
    else:
        bad.state_path.unlink()

    if damage == "delete_sidecar":  # an incomplete checkpoint is simply not there
        assert latest_valid_checkpoint(tmp_path) == good
        return
    with pytest.warns(CheckpointWarning, match=r"step-000000002\.json"):
        assert latest_valid_checkpoint(tmp_path) == good
    valid, problems = scan_checkpoints(tmp_path)
    assert valid == [good] and [p.path for p in problems] == [bad.path]
    with pytest.raises(CheckpointError, match="step-000000002"):
        load_checkpoint(bad.path, Net())


def test_keep_last_k(tmp_path: Path) -> None:
    for step in range(1, 6):
        _save(tmp_path, step, keep_last=2)
    directory = tmp_path / "checkpoints"
    valid, problems = scan_checkpoints(tmp_path)
    assert [info.step for info in valid] == [5, 4] and not problems
    assert len(list(directory.iterdir())) == 6
    (directory / ".leftover.tmp").write_bytes(b"x")
    (directory / "step-000000009.model.0123abcd.safetensors").write_bytes(b"x")
    _save(tmp_path, 6, keep_last=2)
    assert (
        sorted(p.name.split(".")[0] for p in directory.iterdir())
        == ["step-000000005"] * 3 + ["step-000000006"] * 3
    )


def test_keep_last_keeps_damaged_and_other_recipes(tmp_path: Path) -> None:
    other = _save(tmp_path, 9, recipe_hash="old")
    damaged = _save(tmp_path, 1, recipe_hash="new")
    damaged.path.write_text("not json")
    for step in (2, 3, 4):
        _save(tmp_path, step, recipe_hash="new", keep_last=1)
    valid, problems = scan_checkpoints(tmp_path)
    assert [i.step for i in valid] == [9, 4] and [p.path for p in problems] == [damaged.path]
    assert other.model_path.exists() and damaged.path.exists()


def test_recipe_hash_mismatch(tmp_path: Path) -> None:
    old = _save(tmp_path, 1, recipe_hash="a")
    _save(tmp_path, 2, recipe_hash="b")
    with pytest.warns(CheckpointWarning, match=r"step-000000002\.json.*recipe hash b"):
        assert latest_valid_checkpoint(tmp_path, recipe_hash="a") == old
    with pytest.raises(CheckpointError, match=r"step-000000002\.json"):
        latest_valid_checkpoint(tmp_path, recipe_hash="a", on_mismatch="error")
    with pytest.raises(CheckpointError, match="does not match a"):
        load_checkpoint(tmp_path / "checkpoints" / "step-000000002.json", Net(), recipe_hash="a")
    with pytest.warns(CheckpointWarning):
        assert latest_valid_checkpoint(tmp_path, recipe_hash="c") is None


def test_mismatched_model_names_keys_and_file(tmp_path: Path) -> None:
    info = _save(tmp_path, 1)
    with pytest.raises(CheckpointError, match=r"step-000000001\.model.*wrong shapes.*head\.weight"):
        load_checkpoint(info.path, Net(width=5))
    other = nn.Sequential(nn.Linear(4, 6))
    with pytest.raises(CheckpointError, match=r"missing keys: 0\.weight.*unexpected keys: backb"):
        load_checkpoint(info.path, other)
    loose = Net()
    loose.extra = nn.Linear(2, 2)
    loaded = load_checkpoint(info.path, loose, strict=False)
    assert loaded.missing_keys == ["extra.weight", "extra.bias"] and not loaded.unexpected_keys


def test_missing_optimizer_state_is_an_error(tmp_path: Path) -> None:
    info = _save(tmp_path, 1)
    model = Net()
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_checkpoint(info.path, model, torch.optim.SGD(model.parameters(), lr=0.1))


class Arbitrary:
    def __init__(self) -> None:
        self.value = 1


def test_arbitrary_objects_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="Arbitrary is not plain data"):
        _save(tmp_path, 1, extra={"obj": Arbitrary()})
    info = _save(tmp_path, 2)
    state = torch.load(info.state_path, weights_only=True)
    state["extra"] = {"obj": Arbitrary()}
    torch.save(state, info.state_path)
    _rehash(info)
    assert verify_checkpoint(info.path)
    with pytest.raises(CheckpointError, match="not weights-only loadable"):
        load_checkpoint(info.path, Net())


def test_unwraps_compiled_or_parallel_models(tmp_path: Path) -> None:
    model = Net()
    info = save_checkpoint(tmp_path, TrainingState(nn.DataParallel(model), step=0, epoch=0))
    assert load_checkpoint(info.path, Net()).info.step == 0


def test_no_checkpoint(tmp_path: Path) -> None:
    assert latest_valid_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        load_checkpoint(tmp_path, Net())
