"""Every router with every invariant and equivariant loss: two gloo processes train
exactly like one process with the same global batch (weights, BatchNorm statistics and
every logged loss)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

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

ROUTERS: dict[str, dict[str, Any]] = {
    "star": {"name": "star"},
    "hard": {"name": "hard"},
    "shared": {"name": "shared"},
    "topk": {"name": "topk", "noisy": False},  # noise is per rank by design
    "mmoe": {"name": "mmoe"},
}
INVARIANT: dict[str, dict[str, Any]] = {
    "ntxent": {"name": "ntxent"},
    "vicreg": {"name": "vicreg"},
    "barlow": {"name": "barlow"},
    "byol": {"name": "byol", "hidden_dim": 16},
}
EQUIVARIANT: dict[str, dict[str, Any]] = {
    "star_eq": {"name": "star_eq", "hidden_dim": 16},
    "equimod": {"name": "equimod", "hidden_dim": 16},
    "augself": {"name": "augself", "hidden_dim": 16},
}


def matrix() -> dict[str, dict[str, Any]]:
    """20 cases in which every router meets every invariant and every equivariant loss."""
    cases = {}
    eq_names = list(EQUIVARIANT)
    for i, router in enumerate(ROUTERS):
        for j, inv in enumerate(INVARIANT):
            eq = eq_names[(i + j) % len(eq_names)]
            cases[f"{router}-{inv}-{eq}"] = {"heads__router": ROUTERS[router],
                                             "tasks__inv": INVARIANT[inv],
                                             "tasks__eq": EQUIVARIANT[eq]}
    # 48 images at a global batch of 16: three steps an epoch, two epochs
    cases["star-ntxent-star_eq-3steps"] = {
        "data__dataset": {"name": "synthetic_shapes", "length": 48, "size": 16},
        "trainer__epochs": 2}
    return cases


CASES = matrix()
#: The cases of the default run; the whole matrix runs with the slow tests.
FAST = ["topk-ntxent-star_eq", "hard-vicreg-augself", "shared-barlow-equimod",
        "star-ntxent-star_eq-3steps"]
#: One epoch of four steps: long enough for every state (BatchNorm statistics, momentum,
#: EMA targets, the schedule) to matter, short enough that float rounding, which differs
#: between one process and two (sums in another order), is not amplified by training
#: into visible differences (Barlow Twins with a shared expert does so within 8 steps).
OPTIONS = {"trainer__epochs": 1, "monitor__knn_every": 0, "monitor__cca_every": 0,
           "trainer__deterministic": True}


def test_the_matrix_covers_every_router_and_loss_pair() -> None:
    pairs = {(c["heads__router"]["name"], c[f"tasks__{t}"]["name"])
             for c in CASES.values() if "heads__router" in c for t in ("inv", "eq")}
    assert pairs == {(ROUTERS[r]["name"], loss) for r in ROUTERS
                     for loss in [*INVARIANT, *EQUIVARIANT]}


def _recipe(root: Path, case: str) -> Recipe:
    return Recipe.model_validate(tiny_recipe(root / case, **{**OPTIONS, **CASES[case]}))


def _worker(rank: int, world: int, port: int, root: str, cases: list[str]) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    try:
        for case in cases:
            Trainer(_recipe(Path(root) / "ddp", case), resume="never").run()
    finally:
        shutdown_distributed()


def _train(root: Path, cases: list[str]) -> Path:
    for case in cases:
        Trainer(_recipe(root / "single", case), resume="never").run()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(root), cases), nprocs=2, join=True)
    return root


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("ddp_fast"), FAST)


@pytest.fixture(scope="module")
def all_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("ddp_all"), list(CASES))


def check_equal(root: Path, case: str) -> None:
    runs = [root / mode / case / "tiny" for mode in ("single", "ddp")]
    weights = []
    for run in runs:
        info = latest_valid_checkpoint(run)
        assert info is not None, run
        weights.append(load_file(str(info.model_path)))
    one, two = weights
    assert one.keys() == two.keys()
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-4, atol=1e-5, msg=f"{case}: {key}")
    assert any(k.endswith("running_mean") for k in one)
    logged = [[r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "step"]
              for run in runs]
    assert len(logged[0]) == len(logged[1]) > 0
    for a, b in zip(*logged, strict=True):
        for name in ("loss", "inv", "eq"):
            assert b[name] == pytest.approx(a[name], rel=1e-5, abs=2e-6), (case, a["step"], name)


@pytest.mark.parametrize("case", FAST)
def test_two_processes_match_one(fast_runs: Path, case: str) -> None:
    check_equal(fast_runs, case)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_match_one_for_the_whole_matrix(all_runs: Path, case: str) -> None:
    check_equal(all_runs, case)
