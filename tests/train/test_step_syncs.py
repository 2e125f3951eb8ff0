"""A training step queues work on the device and never waits for it: no value is read back
to the host inside a step (the host reads once per log step)."""

from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from moeheads.recipe.schema import Recipe
from moeheads.runtime.distributed import DistContext
from moeheads.train.builder import build_training, wrap_network
from moeheads.train.loop import TrainLoop
from tests.host_reads import count_host_reads
from tests.train.recipes import tiny_recipe


@pytest.mark.parametrize("changes", [
    {},
    {"trainer__accumulate": 2, "trainer__grad_clip": 1.0,
     "heads__router": {"name": "topk", "k": 2}, "trainer__channels_last": True},
], ids=["star", "accumulate_clip_topk"])
def test_training_steps_read_nothing_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict
) -> None:
    recipe = Recipe.model_validate(tiny_recipe(
        tmp_path, trainer__epochs=1, trainer__log_every=1000, monitor__knn_every=0,
        monitor__cca_every=0, **changes))
    recipe.run_dir.mkdir(parents=True)
    parts = build_training(recipe, DistContext())
    wrap_network(parts, compile=False)
    loop = TrainLoop(recipe, recipe.run_dir, Console(quiet=True), parts)
    loop.photometric.masked = True  # what an accelerator gets
    reads: Counter[str] = Counter()
    steps = []
    step = TrainLoop._train_step

    def counted(self: TrainLoop, batch: object, last: bool) -> object:
        with count_host_reads() as inside:
            out = step(self, batch, last)
        reads.update(inside)
        steps.append(last)
        return out

    monkeypatch.setattr(TrainLoop, "_train_step", counted)
    metrics = loop.train(0, 0, 0)
    assert len(steps) == parts.data.steps_per_epoch * recipe.trainer.accumulate >= 4
    assert not reads, dict(reads)
    assert metrics["loss"] > 0  # read once, at the end of the epoch
