"""MoEHeads in a PyTorch Lightning module: two task losses plus the router auxiliary losses.

A small CNN backbone, heads with an invariant task (NT-Xent between two views) and an
equivariant one (STAR's residual predictor), routed by noisy top-k gating whose
load-balancing loss the objective adds to the task losses; trained on random images with
random "augmentation parameters" for a few steps. Swap in your data and backbone (and
``router="star"`` for STAR, which has no auxiliary loss).

    pip install pytorch-lightning     # or: pip install 'moeheads[lightning]'
    python examples/lightning_moeheads.py
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

try:
    import lightning.pytorch as pl
except ImportError:  # the standalone package
    import pytorch_lightning as pl

from moeheads import MoEHeads, Objective
from moeheads.heads import stack_head_outputs


class MoEHeadsModule(pl.LightningModule):
    """Backbone + MoEHeads + one loss per task; the objective adds the auxiliary losses."""

    def __init__(self, feature_dim: int = 64, num_experts: int = 4, lr: float = 0.05) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, feature_dim, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.heads = MoEHeads.build(feature_dim, ["inv", "eq"], num_experts, router="topk",
                                    router_options={"k": 2, "load_balance_weight": 0.01},
                                    out_features=32, hidden_features=[feature_dim])
        self.objective = Objective.build(
            {"inv": {"name": "ntxent"}, "eq": {"name": "star_eq", "embed_dim": 32}}
        )
        self.lr = lr

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        views, original, params = batch  # [B, V, 3, H, W], [B, 3, H, W], [B, V, P]
        views, params = views.transpose(0, 1), params.transpose(0, 1)  # views first
        h_views = self.backbone(views.flatten(0, 1)).unflatten(0, views.shape[:2])
        # One call per view group, as STAR does: each group gets its own BatchNorm batch.
        *per_view, head_original = self.heads.forward_groups(
            torch.cat([h_views, self.backbone(original)[None]])
        )
        out = self.objective(stack_head_outputs(per_view), params=params, original=head_original)
        self.log_dict({f"train/{k}": v.detach() for k, v in out.parts.items()})
        self.log("train/loss", out.loss.detach(), prog_bar=True)
        return out.loss  # task losses + router auxiliary losses

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def random_data(images: int = 64, views: int = 2, size: int = 32, params: int = 11) -> DataLoader:
    """Random images standing in for a view pipeline: (views, original, parameters)."""
    data = TensorDataset(
        torch.rand(images, views, 3, size, size),
        torch.rand(images, 3, size, size),
        torch.randn(images, views, params),
    )
    return DataLoader(data, batch_size=16, shuffle=True, drop_last=True)


def main(max_steps: int = 8) -> MoEHeadsModule:
    torch.manual_seed(0)
    module = MoEHeadsModule()
    trainer = pl.Trainer(max_steps=max_steps, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module, random_data())
    return module


if __name__ == "__main__":
    main()
