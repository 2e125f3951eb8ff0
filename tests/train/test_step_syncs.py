"""A training step queues work on the device and never waits for it: no value is read back
to the host inside a step (the host reads once per log step)."""

from pathlib import Path

import pytest

from moeheads.recipe.schema import Recipe
from tests.host_reads import train_counting_host_reads
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
    reads, steps, metrics, parts = train_counting_host_reads(recipe, monkeypatch)
    assert len(steps) == parts.data.steps_per_epoch * recipe.trainer.accumulate >= 4
    assert not reads, dict(reads)
    assert metrics["loss"] > 0  # read once, at the end of the epoch
