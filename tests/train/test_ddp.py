"""Two gloo processes train exactly like one process with the same global batch."""

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from moeheads.recipe.schema import Recipe
from moeheads.rundir.checkpoint import latest_valid_checkpoint
from moeheads.rundir.metrics import read_metrics
from moeheads.runtime.distributed import shutdown_distributed
from moeheads.train.engine import Trainer
from tests.train.recipes import tiny_recipe

OPTIONS = {"trainer__epochs": 2, "monitor__knn_every": 0, "monitor__cca_every": 0,
           "trainer__deterministic": True}
CASES = {
    "star": {"views__pipeline": "workers"},
    "star_device_views": {"views__pipeline": "device"},
    # BYOL's momentum target and timm's BatchNormAct2d layers (BatchNorm + activation)
    "byol_timm": {"backbone": {"name": "timm:test_efficientnet"},
                  "tasks__inv": {"name": "byol", "hidden_dim": 16}, "trainer__epochs": 1},
}


def _recipe(root: Path, case: str) -> dict:
    return tiny_recipe(root / case, **{**OPTIONS, **CASES[case]})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    seeds = {}
    try:
        for case in CASES:
            Trainer(Recipe.model_validate(_recipe(Path(root) / "ddp", case)),
                    resume="never").run()
            seeds[case] = torch.initial_seed()
    finally:
        shutdown_distributed()
    (Path(root) / f"rank{rank}.json").write_text(json.dumps(seeds))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    for case in CASES:
        Trainer(Recipe.model_validate(_recipe(root / "single", case)), resume="never").run()
    mp.spawn(_worker, args=(2, _free_port(), str(root)), nprocs=2, join=True)
    return root


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    info = latest_valid_checkpoint(run)
    assert info is not None
    return load_file(str(info.model_path))


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_match_one(runs: Path, case: str) -> None:
    one = _final_weights(runs / "single" / case / "tiny")
    two = _final_weights(runs / "ddp" / case / "tiny")
    assert one.keys() == two.keys()
    moved = 0
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-4, atol=1e-5, msg=key)
        moved += int(key.endswith("running_mean"))
    assert moved > 0  # BatchNorm statistics (synchronised across ranks) are compared too
    if case == "byol_timm":  # the momentum target's statistics, synchronised too
        assert any(k.startswith("target.") and k.endswith("running_mean") for k in one)


def test_ranks_draw_different_random_numbers(runs: Path) -> None:
    seeds = [json.loads((runs / f"rank{rank}.json").read_text()) for rank in range(2)]
    for case in CASES:
        assert seeds[0][case] != seeds[1][case]


@pytest.mark.parametrize("case", list(CASES))
def test_logged_losses_are_the_mean_over_ranks(runs: Path, case: str) -> None:
    def steps(run: Path) -> list[dict]:
        return [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] in ("step", "epoch")]

    one, two = steps(runs / "single" / case / "tiny"), steps(runs / "ddp" / case / "tiny")
    assert len(one) == len(two) > 0
    for a, b in zip(one, two, strict=True):
        assert a["kind"] == b["kind"] and a["step"] == b["step"]
        for name in ("loss", "inv", "eq"):
            assert b[name] == pytest.approx(a[name], rel=1e-4, abs=1e-5), (a["step"], name)


def test_checkpoints_hold_every_ranks_generators(runs: Path) -> None:
    info = latest_valid_checkpoint(runs / "ddp" / "star" / "tiny")
    assert info is not None
    state = torch.load(info.state_path, weights_only=True)
    ranks = state["extra"]["rng_ranks"]
    assert len(ranks) == 2
    assert torch.equal(ranks[0]["torch"], state["rng"]["torch"])
    assert not torch.equal(ranks[0]["torch"], ranks[1]["torch"])
