"""The detection protocol on two gloo processes, as torchrun runs it: the same AP as one
process for the same detector, the same training as one process with the whole batch,
and the stage of ``moeheads eval`` and of a recipe's evaluation."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from moeheads.api import run as run_recipe
from moeheads.backbones import create_backbone
from moeheads.data import create_dataset
from moeheads.eval.detection.protocol import DetectionResult, detection_transfer
from moeheads.eval.runner import evaluate_run
from moeheads.recipe.io import load_recipe
from moeheads.recipe.schema import Recipe
from moeheads.runtime.distributed import init_distributed, shutdown_distributed
from moeheads.train.engine import Trainer
from tests.eval.test_detection_stage import FAST
from tests.train.recipes import tiny_recipe, write_recipe

pytestmark = pytest.mark.slow  # about a minute and a half on two CPU cores

#: 96 px images and three anchor sizes: 6 x 6 x 9 = 324 anchors an image, from which the
#: RPN samples exactly 256 (and the box head exactly 16 RoIs) for every image of this
#: data. torchvision's losses are means over a process's samples, so with equal counts
#: the mean of the two processes' gradients is the whole batch's gradient.
OPTIONS: dict[str, Any] = {
    "images_per_batch": 4, "warmup_iters": 2, "steps": (1000,), "train_sizes": (96,),
    "test_size": 96, "anchor_sizes": (16, 32, 64), "roi_size": 2, "rois_per_image": 16,
    "test_images_per_batch": 2, "log_every": 1, "checkpoint_every": 100,
}
ITERATIONS = 4
#: The embedded box data for ``moeheads eval`` and a recipe's stage (FAST's schedule).
STAGE = {"dataset": {"name": "synthetic_shapes_boxes", "length": 4}, **FAST}
#: The one-process pretraining run that ``moeheads eval`` evaluates.
RUN = Path("runs") / "tiny"


def _data() -> tuple[Any, Any]:
    # six test images in batches of two: rank 0 detects batches 0 and 2, rank 1 batch 1
    return (create_dataset("synthetic_shapes_boxes", length=8, size=96),
            create_dataset("synthetic_shapes_boxes", split="test", length=6, size=96))


def _transfer(root: Path, checkpoint: str) -> DetectionResult:
    resnet = create_backbone("torchvision:resnet18").module
    resnet.load_state_dict(torch.load(root / "resnet.pt"))
    train, test = _data()
    return detection_transfer(resnet, train, test, train.classes, checkpoint=root / checkpoint,
                              iterations=ITERATIONS, **OPTIONS)


def _recipe(root: Path) -> Any:
    recipe = tiny_recipe(root / "runs", backbone={"name": "torchvision:resnet18"},
                         views__size=32, trainer__epochs=1)
    recipe["evaluation"] = [{"protocol": "knn", "k": 5}, {"protocol": "detection", **STAGE},
                            {"protocol": "nn1"}]
    return Recipe.model_validate(recipe)


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    folder = Path(root)
    init_distributed("cpu")
    try:
        evaluated = _transfer(folder, "eval.pt")  # resumes the finished one-process detector
        trained = _transfer(folder, "two.pt")
        record, path = evaluate_run(folder / RUN, "detection", STAGE, device="cpu")
        finished = run_recipe(_recipe(folder / "ddp"))  # leaves the process group
    finally:
        shutdown_distributed()
    torch.save({"evaluated": evaluated, "trained": trained, "record": record, "path": path,
                "evaluations": [e.protocol for e in finished.evaluations],
                "report": finished.report}, folder / f"rank{rank}.pt")


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """As many threads as each worker uses (so the one-process results are bitwise those
    two processes compute for the same batches)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("detection_ddp")
    with _threads(1):
        torch.manual_seed(0)
        torch.save(create_backbone("torchvision:resnet18").module.state_dict(),
                   folder / "resnet.pt")
        torch.save(_transfer(folder, "one.pt"), folder / "one.result")
        shutil.copy(folder / "one.pt", folder / "eval.pt")
        recipe = tiny_recipe(folder / "runs", backbone={"name": "torchvision:resnet18"},
                             views__size=32, trainer__epochs=1)
        Trainer(load_recipe(write_recipe(folder / "tiny.yaml", recipe))).run()  # runs/tiny
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(folder)), nprocs=2, join=True)
    return folder


def _load(root: Path, name: str) -> Any:
    return torch.load(root / name, weights_only=False)


def test_evaluation_split_over_two_processes_gives_the_same_ap(root: Path) -> None:
    one: DetectionResult = _load(root, "one.result")
    for rank in (0, 1):
        two: DetectionResult = _load(root, f"rank{rank}.pt")["evaluated"]
        assert two.voc == one.voc  # exactly: each image is detected in the same batch
        assert two.coco == one.coco
    assert one.voc.AP50 > 0  # a detector that finds something (so the numbers say much)


def test_two_processes_with_half_batches_train_as_one_with_the_whole_batch(root: Path
                                                                           ) -> None:
    one: DetectionResult = _load(root, "one.result")
    two: DetectionResult = _load(root, "rank0.pt")["trained"]
    assert _load(root, "rank1.pt")["trained"] == two  # the logged means reach every rank
    assert [h["iteration"] for h in two.losses] == list(range(1, ITERATIONS + 1))
    # Equal up to float rounding: the same images, flips, sizes and sampled anchors and
    # RoIs, and (see OPTIONS) the same loss normalisation; BatchNorm statistics over the
    # whole batch. Only the order of the sums differs (two half-batch means averaged by
    # DDP, an all-reduced BatchNorm): measured, the losses agree to 1.3e-6 relative and
    # the weights to 1.7e-6 absolute after four steps; the bounds leave room for other
    # CPUs' kernels.
    for a, b in zip(two.losses, one.losses, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (a["iteration"], key)
    weights = [torch.load(root / f, weights_only=False)["model"] for f in ("two.pt", "one.pt")]
    assert weights[0].keys() == weights[1].keys()
    for key, value in weights[1].items():
        torch.testing.assert_close(weights[0][key], value, rtol=1e-4, atol=1e-5, msg=key)
    assert any(key.endswith("running_mean") for key in weights[1])  # BatchNorm compared too


def test_moeheads_eval_under_torchrun_writes_one_result(root: Path) -> None:
    import json

    ranks = [_load(root, f"rank{rank}.pt") for rank in (0, 1)]
    path = root / RUN / "eval" / "detection-synthetic_shapes_boxes.json"
    assert ranks[0]["path"] == ranks[1]["path"] == path
    assert ranks[0]["record"]["result"] == ranks[1]["record"]["result"]
    written = json.loads(path.read_text())["result"]["summary"]
    assert written == pytest.approx(ranks[1]["record"]["result"]["summary"])
    assert (root / RUN / "eval" / "checkpoints" / "detection-synthetic_shapes_boxes.pt"
            ).is_file()


def test_a_recipe_under_torchrun_runs_its_detection_stage_on_every_process(root: Path) -> None:
    ranks = [_load(root, f"rank{rank}.pt") for rank in (0, 1)]
    assert ranks[0]["evaluations"] == ["knn", "detection", "nn1"]  # rank 0 runs them all
    assert ranks[1]["evaluations"] == [] and ranks[1]["report"] is None
    assert "### detection" in ranks[0]["report"].read_text()
