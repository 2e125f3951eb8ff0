"""Few-shot evaluation: N-way K-shot episodes solved by logistic regression on frozen features.

Each episode draws ``N`` distinct classes, then ``K`` support and ``Q`` query rows per
class with no row in both. Two variants fit the support rows:

* ``paper`` (the default; AugSelf's few-shot evaluation, which STAR uses):
  scikit-learn's ``LogisticRegression(solver="liblinear", C=1)`` on the raw features,
  i.e. one-vs-rest binary L2 logistic regressions with the intercept penalised
  (:mod:`moeheads.eval.ovr_logistic`, equal to scikit-learn's episode by episode);
* ``fast`` (moeheads' earlier variant): L2-normalised features and one multinomial
  logistic regression with ``l2 = 1 / (N K)`` on the mean loss (the protocol of Tian
  et al., "Rethinking Few-Shot Image Classification", 2020), by batched L-BFGS.

Many episodes are fitted at once. The result is the mean query accuracy and its 95%
confidence interval ``1.96 * std / sqrt(E)`` (population std over episodes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.errors import ConfigError, DataError
from moeheads.eval.logistic import fit_logistic
from moeheads.eval.ovr_logistic import fit_ovr_logistic, ovr_decision


@dataclass
class Episodes:
    """Row indices of a batch of episodes.

    Attributes:
        classes: ``[E, N]`` the classes of each episode (distinct within an episode).
        support: ``[E, N, K]`` support rows; ``support[e, i]`` belong to ``classes[e, i]``.
        query: ``[E, N, Q]`` query rows, disjoint from the support rows.
    """

    classes: Tensor
    support: Tensor
    query: Tensor


@dataclass
class FewShotResult:
    """Outcome of :func:`fewshot_eval`.

    Attributes:
        accuracy: Mean query accuracy over episodes.
        ci95: Half-width of the 95% confidence interval, ``1.96 * std / sqrt(E)``.
        episode_accuracies: ``[E]`` accuracy of each episode.
        ways: N.
        shots: K.
    """

    accuracy: float
    ci95: float
    episode_accuracies: Tensor
    ways: int
    shots: int


def confidence_interval(values: Tensor) -> float:
    """Half-width of the normal 95% interval of the mean: ``1.96 * std / sqrt(len)``."""
    return float(1.96 * values.float().std(unbiased=False) / math.sqrt(len(values)))


def sample_episodes(
    labels: Tensor,
    num_episodes: int = 2000,
    ways: int = 5,
    shots: int = 1,
    queries: int = 16,
    seed: int = 0,
) -> Episodes:
    """Draw seeded N-way K-shot episodes from the classes with at least ``K + Q`` rows.

    Raises:
        DataError: If fewer than ``ways`` classes have ``shots + queries`` rows.
    """
    if min(num_episodes, ways, shots, queries) < 1:
        raise ConfigError("episodes, ways, shots and queries must all be >= 1")
    labels = labels.cpu().long()
    per_episode = shots + queries
    classes, counts = labels.unique(return_counts=True)
    eligible = classes[counts >= per_episode]
    if len(eligible) < ways:
        raise DataError(f"{ways}-way {shots}-shot episodes with {queries} queries need {ways} "
                        f"classes with >= {per_episode} rows; only {len(eligible)} have that many")
    order = torch.argsort(labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    position = {int(c): i for i, c in enumerate(classes)}
    g = torch.Generator().manual_seed(seed)
    # N distinct classes per episode: the first N of a random permutation of the eligible ones.
    chosen = torch.rand(num_episodes, len(eligible), generator=g).argsort(dim=1)[:, :ways]
    episode_classes = eligible[chosen]
    slots = torch.tensor([position[int(c)] for c in episode_classes.flatten()]).view_as(chosen)
    # Distinct rows per class: the smallest random keys among that class's rows.
    max_count = int(counts.max())
    keys = torch.rand(num_episodes, ways, max_count, generator=g)
    keys.masked_fill_(torch.arange(max_count) >= counts[slots].unsqueeze(-1), math.inf)
    picks = keys.topk(per_episode, dim=-1, largest=False).indices
    rows = order[starts[slots].unsqueeze(-1) + picks]
    return Episodes(episode_classes, rows[..., :shots], rows[..., shots:])


def fewshot_eval(
    features: Tensor,
    labels: Tensor,
    *,
    ways: int = 5,
    shots: int = 1,
    queries: int = 16,
    num_episodes: int = 2000,
    variant: Literal["paper", "fast"] = "paper",
    c: float = 1.0,
    l2: float | None = None,
    normalize: bool | None = None,
    max_iter: int = 100,
    episodes_per_batch: int = 250,
    seed: int = 0,
) -> FewShotResult:
    """Mean accuracy and 95% interval of logistic regression over N-way K-shot episodes.

    Args:
        features: ``[n, d]`` frozen features of the evaluation split.
        labels: ``[n]`` integer labels.
        ways: Classes per episode (N).
        shots: Support rows per class (K).
        queries: Query rows per class (Q).
        num_episodes: Number of episodes (E).
        variant: ``paper`` (one-vs-rest, liblinear's problem) or ``fast`` (multinomial).
        c: ``paper``: scikit-learn's ``C``.
        l2: ``fast``: L2 weight on the mean loss; ``1 / (N K)`` by default.
        normalize: L2-normalise the features first (``None``: only for ``fast``).
        max_iter: ``fast``: most L-BFGS iterations per batch of episodes; ``paper``:
            most Newton iterations.
        episodes_per_batch: Episodes fitted together (bounds memory).
        seed: Seed of the episode sampler.

    Example:
        >>> centres = torch.eye(8) * 10
        >>> labels = torch.arange(8).repeat_interleave(20)
        >>> result = fewshot_eval(centres[labels] + torch.randn(160, 8), labels, num_episodes=50)
        >>> result.accuracy > 0.95
        True
    """
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise DataError(f"features {tuple(features.shape)} and labels {tuple(labels.shape)} "
                        "do not match")
    if variant not in ("paper", "fast"):
        raise ConfigError(f"variant must be 'paper' or 'fast', got {variant!r}")
    paper = variant == "paper"
    episodes = sample_episodes(labels, num_episodes, ways, shots, queries, seed)
    normalize = not paper if normalize is None else normalize
    x = F.normalize(features.float(), dim=1) if normalize else features.float()
    l2 = 1.0 / (ways * shots) if l2 is None else l2
    accuracies = [
        _episode_accuracies(x, episodes.support[start:start + episodes_per_batch],
                            episodes.query[start:start + episodes_per_batch],
                            paper=paper, c=c, l2=l2, max_iter=max_iter)
        for start in range(0, num_episodes, episodes_per_batch)
    ]
    per_episode = torch.cat(accuracies).cpu()
    return FewShotResult(float(per_episode.mean()), confidence_interval(per_episode),
                         per_episode, ways, shots)


def _episode_accuracies(x: Tensor, support: Tensor, query: Tensor, *, paper: bool, c: float,
                        l2: float, max_iter: int) -> Tensor:
    """Query accuracy of each episode ``[E]``, its classifier fitted on the support rows
    (``support[E, N, K]`` and ``query[E, N, Q]`` index the rows of ``x``)."""
    e, ways, shots = support.shape
    # Within an episode, class i of the support/query blocks has local label i.
    support_y = torch.arange(ways, device=x.device).repeat_interleave(shots).expand(e, -1)
    query_y = torch.arange(ways, device=x.device).repeat_interleave(query.shape[-1])
    support_x = x[support.to(x.device).flatten(1)]
    query_x = x[query.to(x.device).flatten(1)]
    if paper:
        beta = fit_ovr_logistic(support_x, support_y, ways, c, max_iter)
        predictions = ovr_decision(support_x, beta, query_x).argmax(-1)
    else:
        model = fit_logistic(support_x, support_y, ways, l2, max_iter=max_iter)
        predictions = model.predict(query_x)
    return (predictions == query_y).float().mean(dim=1)
