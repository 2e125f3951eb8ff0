"""The detection learning-rate schedule: linear warm-up, then steps."""

from __future__ import annotations

from collections.abc import Sequence


def learning_rate(iteration: int, base_lr: float, warmup_iters: int, steps: Sequence[int],
                  gamma: float, warmup_factor: float = 0.001) -> float:
    """The rate at ``iteration`` (0-based), as detectron2's ``WarmupMultiStepLR``.

    Example:
        >>> learning_rate(0, 0.02, 100, [18000, 22000], 0.1)
        2e-05
        >>> round(learning_rate(20000, 0.02, 100, [18000, 22000], 0.1), 6)
        0.002
    """
    factor = gamma ** sum(iteration >= s for s in steps)
    if iteration < warmup_iters:
        alpha = iteration / warmup_iters
        factor *= warmup_factor * (1 - alpha) + alpha
    return base_lr * factor
