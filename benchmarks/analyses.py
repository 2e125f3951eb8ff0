"""How long the paper's analyses take on held-out embeddings of a realistic size.

    python benchmarks/analyses.py [--images 5000] [--dim 128] [--experts 16] [--repeats 3]

On random embeddings of the given size (two tasks, every expert's output, two views with
11 parameters each), times in turn: the four redundancy estimators between the tasks;
all four between every pair of experts; each expert's mean CCA with each task; the
equivariance retrieval and prediction error of no change, the run's own predictor and
a predictor fitted on half the images; and each expert's nearest-neighbour kNN accuracy
and view-parameter R^2. Prints the median of ``--repeats`` wall-clock times of each (after
one untimed call, which loads the linear-algebra libraries) and their total.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from moeheads.eval.equivariance_measures import equivariance_scores
from moeheads.losses.equivariant import EquivariantPredictor
from moeheads.numerics.cca import expert_task_cca
from moeheads.numerics.neighbours import expert_neighbours
from moeheads.numerics.redundancy import pairwise_redundancy, prepare, redundancy


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--experts", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    n, d, e = args.images, args.dim, args.experts
    shared = torch.randn(n, d // 2, generator=g)
    inv = torch.cat([shared, torch.randn(n, d - d // 2, generator=g)], 1)
    eq = torch.cat([shared, torch.randn(n, d - d // 2, generator=g)], 1)
    experts = torch.randn(e, n, d, generator=g)
    views, params = torch.randn(2, n, d, generator=g), torch.randn(2, n, 11, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    own = EquivariantPredictor(embed_dim=d, param_dim=11).eval()
    rows = {
        "redundancy inv-eq (mean, SVCCA, PWCCA, top-k)": lambda: redundancy(inv, eq),
        f"redundancy, all {e * (e - 1) // 2} expert pairs": lambda: pairwise_redundancy(
            [prepare(x) for x in experts]),
        "mean CCA of each expert with each task": lambda: expert_task_cca(
            experts, {"inv": inv, "eq": eq}),
        "equivariance retrieval + prediction error (fit 10 epochs)": lambda: (
            equivariance_scores(eq, views, params, own=own)),
        f"per-expert neighbours (k=20, {e} experts)": lambda: expert_neighbours(
            experts, labels, params[0], k=20),
    }
    print(f"{n} images, {d} dimensions, {e} experts, median of {args.repeats} "
          f"(threads: {torch.get_num_threads()})")
    total = 0.0
    for label, fn in rows.items():
        seconds = timed(fn, args.repeats)
        total += seconds
        print(f"  {label:<60} {seconds:7.2f} s")
    print(f"  {'all analyses':<60} {total:7.2f} s")


if __name__ == "__main__":
    main()
