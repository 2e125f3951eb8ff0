"""Linear-probe L2 sweep: moeheads (torch L-BFGS) vs scikit-learn, plus extraction images/s.

Both fit the same synthetic Gaussian-mixture features (seeded) over the same 45-value
L2 grid, warm-started, then refit on train + validation at their chosen weight and
score the test split, for each protocol (side by side, with the time ratio):

* ``paper`` (AugSelf's, the ``linear`` default): raw features, summed cross-entropy +
  ``w (||W||^2 + ||b||^2)``, weak to strong, at most 5000 iterations, tolerance 1e-10.
  scikit-learn solves the same problem with the intercept as a penalised constant
  feature (``fit_intercept=False`` on ``[x, 1]``) and ``C = 1 / (2 w)``.
* ``fast``: standardised features, mean cross-entropy + ``l2 / 2 ||W||^2``, strong to
  weak, 100 iterations, tolerance 1e-4 (scikit-learn: ``C = 1 / (n l2)``).

Usage:
    python benchmarks/linear_sweep.py                      # both protocols, 10,000 x 512
    python benchmarks/linear_sweep.py --protocol paper     # one protocol
    python benchmarks/linear_sweep.py --full               # CIFAR-sized: 50,000 x 512
    python benchmarks/linear_sweep.py --threads 1          # same CPU thread count for both
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
import torchvision
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from moeheads.eval.linear import l2_grid, linear_probe, split_validation, standardize
from moeheads.numerics.features import extract_features


def gaussian_mixture(
    n: int, dim: int, classes: int, seed: int, separation: float = 3.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of a ``classes``-component mixture whose means are ~``separation`` apart."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=g) * separation / (2 * dim) ** 0.5
    labels = torch.randint(classes, (n,), generator=g)
    return means[labels] + torch.randn(n, dim, generator=g), labels


def sklearn_sweep(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
    x_full: np.ndarray, y_full: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
    grid: list[float], max_iter: int, tol: float, protocol: str = "fast",
) -> tuple[float, float]:
    """The same protocol with scikit-learn; returns (best grid value, test accuracy).

    ``fast``: ``C = 1 / (n * l2)``, strong to weak. ``paper``: ``C = 1 / (2 w)`` on
    ``[x, 1]`` without a separate intercept (so the bias is penalised), weak to strong,
    the refit warm-started from the best weight's solution.
    """
    paper = protocol == "paper"
    if paper:
        x_train, x_val, x_full, x_test = (np.hstack([a, np.ones((len(a), 1), a.dtype)])
                                          for a in (x_train, x_val, x_full, x_test))
    model = LogisticRegression(solver="lbfgs", warm_start=True, max_iter=max_iter, tol=tol,
                               fit_intercept=not paper)

    def c_of(value: float, rows: int) -> float:
        return 1.0 / (2.0 * value) if paper else 1.0 / (rows * value)

    best: tuple[float, float, np.ndarray] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for value in sorted(grid, reverse=not paper):
            model.set_params(C=c_of(value, len(y_train)))
            model.fit(x_train, y_train)
            score = (model.predict(x_val) == y_val).mean()
            if best is None or score > best[0]:
                best = (score, value, model.coef_.copy())
        assert best is not None
        if paper:
            model.coef_ = best[2]
        model.set_params(C=c_of(best[1], len(y_full)))
        model.fit(x_full, y_full)
    return best[1], float((model.predict(x_test) == y_test).mean())


def extraction_speed(image_size: int, num_images: int, batch_size: int) -> float:
    """CPU images/s of a torchvision resnet18 (fc removed) at ``image_size`` px."""
    backbone = torchvision.models.resnet18()
    backbone.fc = torch.nn.Identity()
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (num_images, 3, image_size + 32, image_size + 32),
                           dtype=torch.uint8, generator=g)
    dataset = [(img, 0) for img in images]
    result = extract_features(backbone, dataset, batch_size=batch_size, image_size=image_size)
    assert result.images_per_second is not None
    return result.images_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="50,000 x 512 (CIFAR-sized)")
    parser.add_argument("--train", type=int, default=10_000, help="training rows (with val)")
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--protocol", choices=["paper", "fast", "both"], default="both")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="override the protocol's limit (paper 5000, fast 100)")
    parser.add_argument("--tol", type=float, default=None,
                        help="override the protocol's tolerance (paper 1e-10, fast 1e-4)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--extract-images", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch and NumPy BLAS (default: library defaults)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    n_train = 50_000 if args.full else args.train

    x, y = gaussian_mixture(n_train + args.test, args.dim, args.classes, seed=0)
    x_trainval, y_trainval, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    grid = l2_grid()
    print(f"features: train+val {n_train} x {args.dim}, test {args.test}, {args.classes} classes; "
          f"{len(grid)} L2 weights; torch threads={torch.get_num_threads()}")
    protocols = ["paper", "fast"] if args.protocol == "both" else [args.protocol]
    rows = []
    for protocol in protocols:
        max_iter = args.max_iter or (5000 if protocol == "paper" else 100)
        tol = args.tol or (1e-10 if protocol == "paper" else 1e-4)
        start = time.perf_counter()
        ours = linear_probe(x_trainval, y_trainval, x_test, y_test, variant=protocol,
                            grid=grid, max_iter=max_iter, tolerance=tol, device=args.device)
        t_ours = time.perf_counter() - start
        row = [protocol, f"{max_iter}", f"{tol:g}", f"{t_ours:.2f}",
               f"{ours.l2:.3g}", f"{ours.test_accuracy:.4f}"]
        if not args.skip_sklearn:
            train_idx, val_idx = split_validation(len(y_trainval))
            xt, xv = x_trainval[train_idx], x_trainval[val_idx]
            xf, xs = torch.cat([xt, xv]), x_test
            if protocol == "fast":
                xt, xv = standardize(xt, xv)
                xf, xs = standardize(xf, xs)
            yt, yv = y_trainval[train_idx], y_trainval[val_idx]
            start = time.perf_counter()
            sk_value, sk_test = sklearn_sweep(
                xt.numpy(), yt.numpy(), xv.numpy(), yv.numpy(),
                xf.numpy(), torch.cat([yt, yv]).numpy(), xs.numpy(), y_test.numpy(),
                grid, max_iter, tol, protocol,
            )
            t_sk = time.perf_counter() - start
            row += [f"{t_sk:.2f}", f"{sk_value:.3g}", f"{sk_test:.4f}", f"{t_sk / t_ours:.2f}x"]
        rows.append(row)
    header = ["protocol", "max_iter", "tol", f"moeheads s ({args.device})", "best", "test"]
    if not args.skip_sklearn:
        header += ["sklearn s", "best", "test", "speed-up (sklearn / moeheads)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")

    if args.extract_images:
        ips = extraction_speed(96, args.extract_images, batch_size=128)
        print(f"feature extraction, resnet18 @ 96 px on CPU: {ips:.1f} images/s "
              f"({args.extract_images} images, batch 128)")


if __name__ == "__main__":
    main()
