"""What the engine sets up before training: determinism, precision, per-rank seeds, resume."""

import os
from pathlib import Path

import pytest
import torch
from rich.console import Console

from moeheads.errors import CheckpointError, ConfigError
from moeheads.recipe.schema import Recipe
from moeheads.rundir.checkpoint import scan_checkpoints
from moeheads.runtime.distributed import DistContext
from moeheads.train import builder, engine
from moeheads.train.builder import (
    build_training,
    compile_targets,
    resolve_precision,
    synchronise_batchnorm,
)
from moeheads.train.engine import StartPlan, Trainer, configure_determinism, rank_seed
from tests.train.recipes import tiny_recipe


class _StopError(Exception):
    pass


def test_deterministic_run_sets_cublas_workspace_before_cuda_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seen: list[str | None] = []

    def init(*args: object, **kwargs: object) -> None:  # where CUDA would start
        seen.append(os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
        raise _StopError

    monkeypatch.setattr(engine, "init_distributed", init)
    recipe = Recipe.model_validate(tiny_recipe(tmp_path, trainer__deterministic=True))
    try:
        with pytest.raises(_StopError):
            Trainer(recipe, resume="never").run()
        assert seen == [":4096:8"]
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark
    finally:
        configure_determinism(False)
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_precision_uses_bf16_only_where_native(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: torch.dtype
) -> None:
    def supported(including_emulation: bool = True) -> bool:
        return native or including_emulation  # an emulating GPU says yes by default

    monkeypatch.setattr(builder.torch.cuda, "is_bf16_supported", supported)
    assert resolve_precision("auto", torch.device("cuda")) == expected
    assert resolve_precision("auto", torch.device("cpu")) is None


def test_rank_seeds_differ_and_rank_zero_keeps_the_recipe_seed() -> None:
    assert rank_seed(3, 0) == 3
    assert len({rank_seed(3, rank) for rank in range(8)}) == 8


class _Rank1(DistContext):
    """Rank 1 of two, whose broadcast delivers what rank 0 chose."""

    def __init__(self, chosen: object, others_failed: bool = False) -> None:
        super().__init__(rank=1, world_size=2)
        self.chosen = chosen
        self.others_failed = others_failed

    def broadcast_object(self, obj: object) -> object:
        return self.chosen

    def mean(self, value: float) -> float:
        return max(value, float(self.others_failed))

    def barrier(self) -> None:
        pass


def test_other_ranks_resume_from_the_checkpoint_rank_zero_chose(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(tiny_recipe(
        tmp_path, trainer__epochs=2, monitor__knn_every=0, monitor__cca_every=0))
    Trainer(recipe, resume="never", console=Console(quiet=True)).run()
    newer, older = scan_checkpoints(recipe.run_dir)[0][:2]
    assert older.step < newer.step
    parts = build_training(recipe, DistContext())
    trainer = Trainer(recipe, resume="auto")
    plan = trainer._shared_plan(_Rank1(StartPlan(older.path)))  # rank 0 saw the older one
    parts.ctx = _Rank1(None)
    assert trainer._resume(parts, plan)[2] == older.step
    # rank 0's error reaches every rank instead of leaving them waiting
    with pytest.raises(ConfigError, match="rank 0 says no"):
        trainer._shared_plan(_Rank1(ConfigError("rank 0 says no")))
    # a rank that loaded the checkpoint learns that another could not
    parts.ctx = _Rank1(None, others_failed=True)
    with pytest.raises(CheckpointError, match="another process could not load"):
        trainer._resume(parts, plan)


def test_parts_holding_synchronised_batchnorm_are_not_compiled(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(tiny_recipe(tmp_path))
    model = build_training(recipe, DistContext()).model
    assert set(compile_targets(model)) == {"backbone", "experts", "router"}
    synchronise_batchnorm(model, torch.device("cpu"))  # what several processes get
    assert set(compile_targets(model)) == {"router"}
    vit = {"name": "timm:vit_tiny_patch16_224", "img_size": 16, "patch_size": 8, "depth": 1}
    model = build_training(Recipe.model_validate(tiny_recipe(tmp_path, backbone=vit)),
                           DistContext()).model
    synchronise_batchnorm(model, torch.device("cpu"))
    assert set(compile_targets(model)) == {"backbone", "router"}  # LayerNorm only


def test_each_rank_restores_its_own_generators() -> None:
    from moeheads.rundir.rng import capture_rng_state
    from moeheads.train.engine import _restore_rank_rng

    states = []
    for seed in (10, 11):
        torch.manual_seed(seed)
        states.append(capture_rng_state())
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _restore_rank_rng(states, DistContext(rank=1, world_size=2), seed=3, step=5)
    torch.testing.assert_close(torch.rand(3), expected)
    # saved by another number of processes: a seed of this rank's own, not rank 0's state
    _restore_rank_rng(states, DistContext(rank=1, world_size=4), seed=3, step=5)
    assert torch.initial_seed() == rank_seed(8, 1)
