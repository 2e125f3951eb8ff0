"""How strongly each task pulls on the backbone: the norm of the gradient of its weighted
loss with respect to the backbone's features, ``||d (w_t L_t) / d h||`` over every group
of images of the step.

Measured at logged steps only, before the step's backward (the graph is kept for it);
the parameters' gradients are not touched. The values stay on the device until the log
reads them with the step's other scalars.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from moeheads.assembly.model import StepOutput


def task_gradient_norms(out: StepOutput, tasks: Iterable[str]) -> dict[str, Tensor]:
    """``{"<task>/grad_norm": norm}`` for each task of ``out`` (device scalars)."""
    features = [f for f in out.features if f.requires_grad]
    norms: dict[str, Tensor] = {}
    if not features:
        return norms
    for task in tasks:
        loss = out.loss.parts.get(f"{task}/weighted")
        if loss is None or not loss.requires_grad:
            continue
        grads = torch.autograd.grad(loss, features, retain_graph=True, allow_unused=True)
        squares = [g.float().square().sum() for g in grads if g is not None]
        if squares:
            norms[f"{task}/grad_norm"] = torch.stack(squares).sum().sqrt()
    return norms
