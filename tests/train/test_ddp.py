"""Two gloo processes train exactly like one process with the same global batch."""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from moeheads.config import Recipe
from moeheads.rundir.checkpoint import latest_valid_checkpoint
from moeheads.rundir.distributed import shutdown_distributed
from moeheads.train.engine import Trainer
from tests.train.recipes import tiny_recipe


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, port: int, recipe: dict) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    try:
        Trainer(Recipe.model_validate(recipe), resume="never").run()
    finally:
        shutdown_distributed()


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    info = latest_valid_checkpoint(run)
    assert info is not None
    return load_file(str(info.model_path))


@pytest.mark.parametrize("pipeline", ["workers", "device"])
def test_two_processes_match_one(tmp_path: Path, pipeline: str) -> None:
    options = {"trainer__epochs": 2, "monitor__knn_every": 0, "monitor__cca_every": 0,
               "trainer__deterministic": True, "views__pipeline": pipeline}
    single = Recipe.model_validate(tiny_recipe(tmp_path / "single", **options))
    Trainer(single, resume="never").run()
    multi = tiny_recipe(tmp_path / "ddp", **options)
    mp.spawn(_worker, args=(2, _free_port(), multi), nprocs=2, join=True)

    one = _final_weights(single.run_dir)
    two = _final_weights(tmp_path / "ddp" / "tiny")
    assert one.keys() == two.keys()
    moved = 0
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-4, atol=1e-5, msg=key)
        moved += int(key.endswith("running_mean"))
    assert moved > 0  # BatchNorm statistics (synchronised across ranks) are compared too
