"""Linear-probe L2 sweep: moeheads (torch L-BFGS) vs scikit-learn, plus extraction images/s.

Both fit the same standardised synthetic Gaussian-mixture features (seeded) over
the same 45-value L2 grid, from the strongest to the weakest weight, warm-started,
with the same iteration limit and gradient tolerance; both then refit on
train + validation at their chosen weight and score the test split.

Usage:
    python benchmarks/linear_sweep.py              # 10,000 x 512 train features
    python benchmarks/linear_sweep.py --full       # CIFAR-sized: 50,000 x 512
    python benchmarks/linear_sweep.py --threads 1  # same CPU thread count for both
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
    grid: list[float], max_iter: int, tol: float,
) -> tuple[float, float]:
    """The same protocol with scikit-learn (``C = 1 / (n * l2)``); returns (best l2, test acc)."""
    model = LogisticRegression(solver="lbfgs", warm_start=True, max_iter=max_iter, tol=tol)
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for l2 in sorted(grid, reverse=True):
            model.set_params(C=1.0 / (len(y_train) * l2))
            model.fit(x_train, y_train)
            scores.append(((model.predict(x_val) == y_val).mean(), l2))
        best_l2 = max(scores, key=lambda s: s[0])[1]
        model.set_params(C=1.0 / (len(y_full) * best_l2))
        model.fit(x_full, y_full)
    return best_l2, float((model.predict(x_test) == y_test).mean())


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
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--tol", type=float, default=1e-4)
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
          f"{len(grid)} L2 weights; max_iter={args.max_iter}, tol={args.tol}; "
          f"torch threads={torch.get_num_threads()}")

    start = time.perf_counter()
    ours = linear_probe(x_trainval, y_trainval, x_test, y_test, grid=grid, max_iter=args.max_iter,
                        tolerance=args.tol, device=args.device)
    t_ours = time.perf_counter() - start
    print(f"moeheads ({args.device}): {t_ours:8.2f} s  best l2={ours.l2:.3g}  "
          f"val={ours.val_accuracy:.4f}  test={ours.test_accuracy:.4f}")

    if not args.skip_sklearn:
        train_idx, val_idx = split_validation(len(y_trainval))
        xt, xv = standardize(x_trainval[train_idx], x_trainval[val_idx])
        xf, xs = standardize(torch.cat([x_trainval[train_idx], x_trainval[val_idx]]), x_test)
        yt, yv = y_trainval[train_idx], y_trainval[val_idx]
        start = time.perf_counter()
        sk_l2, sk_test = sklearn_sweep(
            xt.numpy(), yt.numpy(), xv.numpy(), yv.numpy(),
            xf.numpy(), torch.cat([yt, yv]).numpy(), xs.numpy(), y_test.numpy(),
            grid, args.max_iter, args.tol,
        )
        t_sk = time.perf_counter() - start
        print(f"scikit-learn:   {t_sk:8.2f} s  best l2={sk_l2:.3g}  test={sk_test:.4f}")
        print(f"speed-up (scikit-learn / moeheads): {t_sk / t_ours:.2f}x")

    if args.extract_images:
        ips = extraction_speed(96, args.extract_images, batch_size=128)
        print(f"feature extraction, resnet18 @ 96 px on CPU: {ips:.1f} images/s "
              f"({args.extract_images} images, batch 128)")


if __name__ == "__main__":
    main()
