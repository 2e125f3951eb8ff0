"""Measurements during pretraining: kNN accuracy, canonical correlation, routing usage."""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Subset

from moeheads.assembly.model import PretrainModel
from moeheads.heads import routing_stats
from moeheads.numerics.cca import cca
from moeheads.numerics.features import extract_features
from moeheads.numerics.knn import knn_classify
from moeheads.recipe.schema import MonitorConfig
from moeheads.views.options import ViewOptions


class GateBuffer:
    """The gates of the most recent training rows, for routing statistics per epoch.

    Args:
        max_rows: Rows kept per task.
    """

    def __init__(self, max_rows: int = 8192) -> None:
        self.max_rows = max_rows
        self._chunks: dict[str, deque[Tensor]] = {}
        self._rows: dict[str, int] = {}

    def add(self, gates: dict[str, Tensor]) -> None:
        """Keep a batch's gates ``task -> [..., N]`` (detached, on their device: no host read
        until :meth:`stats` or :meth:`state_dict`)."""
        for task, g in gates.items():
            rows = g.detach().reshape(-1, g.shape[-1]).float()
            chunks = self._chunks.setdefault(task, deque())
            chunks.append(rows)
            self._rows[task] = self._rows.get(task, 0) + len(rows)
            while self._rows[task] - len(chunks[0]) >= self.max_rows:
                self._rows[task] -= len(chunks.popleft())

    def stats(self) -> dict[str, Any] | None:
        """:func:`~moeheads.heads.routing_stats.routing_stats` of the kept gates, as plain
        values."""
        if not self._chunks:
            return None
        gates = {task: torch.cat(list(chunks)).cpu() for task, chunks in self._chunks.items()}
        return routing_stats(gates).as_dict()

    def clear(self) -> None:
        """Forget every kept row (at the start of an epoch)."""
        self._chunks.clear()
        self._rows.clear()

    def state_dict(self) -> dict[str, list[Tensor]]:
        """The kept gates, batch by batch, per task (to resume an epoch's statistics)."""
        return {task: [chunk.cpu() for chunk in chunks] for task, chunks in self._chunks.items()}

    def load_state_dict(self, state: dict[str, list[Tensor]]) -> None:
        """Keep the gates of :meth:`state_dict` (replacing any kept now)."""
        self.clear()
        for task, chunks in state.items():
            self._chunks[task] = deque(chunk.float().cpu() for chunk in chunks)
            self._rows[task] = sum(len(chunk) for chunk in chunks)


def _limit(dataset: Any, count: int | None) -> Any:
    if count is None or count >= len(dataset):
        return dataset
    step = len(dataset) / count
    return Subset(dataset, [int(i * step) for i in range(count)])


@torch.no_grad()
def probe_metrics(
    model: PretrainModel,
    probe_train: Any,
    probe_test: Any,
    *,
    views: ViewOptions,
    monitor: MonitorConfig,
    device: torch.device,
    with_knn: bool,
    with_cca: bool,
    batch_size: int = 256,
) -> dict[str, float]:
    """kNN and 1-NN accuracy of the backbone, and the mean canonical correlation between the
    first two tasks' embeddings, on held-out probe images (no augmentation).

    Images are center-cropped to ``views.size`` and normalised with ``views.mean`` /
    ``views.std``; ``monitor`` gives ``knn_k``, ``knn_temperature`` and ``probe_images``.
    """
    knn_k, knn_temperature = monitor.knn_k, monitor.knn_temperature
    train = _limit(probe_train, monitor.probe_images)
    test = _limit(probe_test, monitor.probe_images)
    options = {"batch_size": batch_size, "device": device, "image_size": views.size,
               "mean": views.mean, "std": views.std}
    backbone = model.encoder.backbone
    test_set = extract_features(backbone, test, **options)
    out: dict[str, float] = {}
    if with_knn:
        train_set = extract_features(backbone, train, **options)
        feats = train_set.features.to(device), test_set.features.to(device)
        labels = train_set.labels.to(device), test_set.labels.to(device)
        result = knn_classify(feats[0], labels[0], feats[1], labels[1], k=knn_k,
                              temperature=knn_temperature)
        nn1 = knn_classify(feats[0], labels[0], feats[1], labels[1], k=1)
        out.update({"knn_top1": result.top1, "nn1_top1": nn1.top1})
        if test_set.images_per_second:
            out["feature_images_per_s"] = test_set.images_per_second
    tasks = model.encoder.heads.tasks
    if with_cca and len(tasks) >= 2:
        heads = model.encoder.heads
        was_training = heads.training
        heads.eval()
        try:
            embeddings = heads(test_set.features.to(device)).embeddings
        finally:
            heads.train(was_training)
        out["cca_mean"] = cca(embeddings[tasks[0]].float(), embeddings[tasks[1]].float()).mean
    return out
