"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen, Kornblith, Norouzi, Hinton. "A Simple Framework for Contrastive Learning of
Visual Representations". ICML 2020.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from moeheads.errors import ConfigError, ShapeError
from moeheads.losses.base import LOSSES, LossOutput
from moeheads.losses.invariant import InvariantLoss
from moeheads.runtime.gather import gather_if, rank


def nt_xent(
    a: Tensor, b: Tensor, temperature: float, gather: bool = True, owner: str = "ntxent"
) -> Tensor:
    """NT-Xent between paired rows: ``a[i]`` and ``b[i]`` are positives.

    Every other row of ``[a; b]`` (over all ranks when ``gather``) is a negative of
    both, so each of the ``2M`` anchors has ``2M - 2`` negatives (M pairs globally);
    the loss is the mean cross-entropy over anchors, in both directions. Cosine
    similarities and the softmax are computed in float32.

    Args:
        a: ``[M, D]`` first members of the pairs.
        b: ``[M, D]`` second members.
        temperature: Softmax temperature tau.
        gather: Take negatives from every rank under torch.distributed.
        owner: Name used in warnings and errors.

    Raises:
        ConfigError: With fewer than 2 pairs in total (no negatives).
    """
    with torch.autocast(device_type=a.device.type, enabled=False):
        a = F.normalize(a.float(), dim=-1)
        b = F.normalize(b.float(), dim=-1)
        pairs = a.shape[0]
        all_a, all_b = gather_if(a, gather, owner), gather_if(b, gather, owner)
        total = all_a.shape[0]
        if total < 2:
            raise ShapeError(f"{owner} needs at least 2 pairs; a batch of 1 has no negatives")
        offset = rank() * pairs if total != pairs else 0
        anchors = torch.cat([a, b])  # [2m, D]
        logits = anchors @ torch.cat([all_a, all_b]).T / temperature  # [2m, 2M]
        index = torch.arange(pairs, device=a.device) + offset
        own = torch.cat([index, index + total])
        positive = torch.cat([index + total, index])
        rows = torch.arange(2 * pairs, device=a.device)
        self_mask = torch.zeros_like(logits, dtype=torch.bool)
        self_mask[rows, own] = True
        logits = logits.masked_fill(self_mask, float("-inf"))
        return F.cross_entropy(logits, positive)


@LOSSES.register("ntxent")
class NTXentLoss(InvariantLoss):
    """SimCLR's NT-Xent contrastive loss (Chen et al., ICML 2020).

    Chen, Kornblith, Norouzi, Hinton. "A Simple Framework for Contrastive Learning of
    Visual Representations". ICML 2020.
    For two views of B images, the 2B embeddings are L2-normalised; the positive of
    ``z1[i]`` is ``z2[i]`` and the other 2B - 2 embeddings are its negatives:
    ``l(i, j) = -log(exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau))``, averaged over
    all 2B anchors. Under torch.distributed, embeddings are gathered from every rank
    with gradient, so the negatives come from the global batch; each rank's loss is
    the mean over its own anchors (the mean over ranks equals the global loss).

    The default temperature is STAR's 0.2 (SimCLR used 0.1 to 1.0 depending on the
    batch size). Equal to ``lightly.loss.NTXentLoss`` (whose default is 0.5) for the
    same temperature.

    Args:
        temperature: Softmax temperature tau (> 0).
        gather_distributed: Gather negatives from all ranks under torch.distributed; a
            warning is issued when this is off in a distributed run.

    Example:
        >>> loss = NTXentLoss(temperature=0.2)
        >>> out = loss(torch.randn(8, 128), torch.randn(8, 128))
        >>> out.loss.shape
        torch.Size([])
    """

    def __init__(self, temperature: float = 0.2, gather_distributed: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"ntxent: temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, z1: Tensor, z2: Tensor) -> LossOutput:
        """NT-Xent between ``z1[B, D]`` and ``z2[B, D]`` (B >= 2)."""
        self.check_pair(z1, z2)
        return LossOutput(nt_xent(z1, z2, self.temperature, self.gather_distributed, "ntxent"))

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather_distributed={self.gather_distributed}"
