"""A short demo of STAR heads: experts specialise between an invariant and an equivariant task.

Features are random vectors; the invariant target depends on one half of the features,
the equivariant target on the other half. STAR's soft routers learn to send the two tasks
to different experts, which the routing statistics show.

    python examples/heads_demo.py
"""

from __future__ import annotations

import torch
from rich.console import Console
from rich.table import Table

from moeheads import MoEHeads, routing_stats


def main(steps: int = 300, seed: int = 0) -> None:
    torch.manual_seed(seed)
    console = Console()
    d, n_experts = 32, 4
    heads = MoEHeads.build(d, ["inv", "eq"], n_experts, router="star",
                           out_features=8, hidden_features=[32])
    target_inv = torch.nn.Linear(d // 2, 8)
    target_eq = torch.nn.Linear(d // 2, 8)
    optimizer = torch.optim.SGD(heads.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps + 1):
        h = torch.randn(256, d)
        with torch.no_grad():
            y_inv = target_inv(h[:, : d // 2])
            y_eq = torch.tanh(target_eq(h[:, d // 2 :])) * 3
        out = heads(h)
        loss_inv = (out.embeddings["inv"] - y_inv).square().mean()
        loss_eq = (out.embeddings["eq"] - y_eq).square().mean()
        loss = loss_inv + loss_eq + out.aux_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            console.print(f"step {step:4d}  inv loss {loss_inv.item():.3f}  "
                          f"eq loss {loss_eq.item():.3f}")
    heads.eval()
    with torch.no_grad():
        stats = routing_stats(heads(torch.randn(1024, d)).gates)
    table = Table(title="mean gate per expert (STAR routers)")
    table.add_column("task")
    for k in range(n_experts):
        table.add_column(f"E{k}", justify="right")
    for task, usage in stats.usage.items():
        table.add_row(task, *[f"{u:.2f}" for u in usage.tolist()])
    console.print(table)
    console.print(f"overlap of expert usage between tasks: {stats.overlap['inv|eq']:.2f} "
                  f"(1 = identical, 0 = disjoint)")


if __name__ == "__main__":
    main()
