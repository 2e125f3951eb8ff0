"""What makes the detection protocol split over processes as one process: data order,
per-image draws and sampling that do not depend on the split; the checks before it."""

from __future__ import annotations

import itertools

import pytest
import torch

from moeheads.backbones import create_backbone
from moeheads.errors import ConfigError
from moeheads.eval.detection.detector import build_detector
from moeheads.eval.detection.inference import batch_share
from moeheads.eval.detection.protocol import _check_split, _context
from moeheads.eval.detection.sampling import SeededSampler, draw_images, seed_images
from moeheads.eval.detection.train import Schedule, _batches
from moeheads.eval.runner import evaluate_run
from moeheads.runtime.distributed import DistContext


def _matched(count: int) -> list[torch.Tensor]:
    """Anchor labels of ``count`` images: -1 ignored, 0 background, >= 1 an object."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(-1, 3, (1000,), generator=generator) for _ in range(count)]


def _sample(sampler: SeededSampler, matched: list[torch.Tensor], seeds: list[int]) -> list:
    sampler.seeds = seeds
    positives, negatives = sampler(matched)
    return [torch.cat([p, n]) for p, n in zip(positives, negatives, strict=True)]


def test_each_image_samples_the_same_anchors_however_the_batch_is_split() -> None:
    sampler, matched = SeededSampler(256, 0.5, stream=0), _matched(4)
    seeds = draw_images(torch.Generator().manual_seed(0), 4, True, (64,)).seeds
    whole = _sample(sampler, matched, seeds)
    halves = _sample(sampler, matched[:2], seeds[:2]) + _sample(sampler, matched[2:], seeds[2:])
    assert all(torch.equal(a, b) for a, b in zip(whole, halves, strict=True))
    assert [int(m.sum()) for m in whole] == [256] * 4
    other = _sample(SeededSampler(256, 0.5, stream=1), matched, seeds)  # the RoI stream
    assert not all(torch.equal(a, b) for a, b in zip(whole, other, strict=True))
    sampler.seeds = None  # torchvision's draws from the global generator
    assert len(sampler(matched)[0]) == 4


def test_training_images_are_resized_to_their_drawn_sizes() -> None:
    model = build_detector(create_backbone("torchvision:resnet18").module, 3,
                           train_sizes=(64, 96), test_size=64).train()
    draws = draw_images(torch.Generator().manual_seed(0), 6, False, (64, 96))
    assert set(draws.sizes) == {64, 96} and draws.flips == [False] * 6
    seed_images(model, draws.part(1, 4))
    images, _ = model.transform([torch.rand(3, 32, 40) for _ in range(3)])
    assert [h for h, _ in images.image_sizes] == draws.sizes[1:4]


def test_each_process_loads_its_share_of_every_global_batch() -> None:
    data, schedule = list(range(13)), Schedule(images_per_batch=4, seed=5)

    def first(ctx: DistContext, count: int = 6) -> list:
        return list(itertools.islice(_batches(data, schedule, 0, 0, ctx), count))

    one = first(DistContext())
    shares = [first(DistContext(rank, 2)) for rank in (0, 1)]
    assert [a + b for a, b in zip(*shares, strict=True)] == one
    assert all(len(batch) == 4 for batch in one)  # whole batches (the rest is dropped)
    assert sorted(one[0] + one[1] + one[2]) != sorted(one[3] + one[4] + one[5])  # reshuffled


def test_test_images_are_shared_in_whole_batches() -> None:
    shares = [batch_share(11, 2, rank, 3) for rank in range(3)]
    assert sorted(itertools.chain(*shares)) == list(range(11))
    assert shares[1] == [2, 3, 8, 9] and shares[2] == [4, 5, 10]


def test_a_global_batch_must_split_evenly() -> None:
    assert not _context("cpu", 3, 16).distributed  # one process: no constraint
    with pytest.raises(ConfigError, match="does not split evenly over 3 processes"):
        _check_split(DistContext(0, 3), 100, 16)
    with pytest.raises(ConfigError, match="5 training images are fewer than images_per_batch 8"):
        _check_split(DistContext(0, 2), 5, 8)


def test_moeheads_eval_under_torchrun_refuses_a_protocol_of_one_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=r"'knn' runs in one process.*: detection"):
        evaluate_run("runs/none", "knn", {}, device="cpu")
