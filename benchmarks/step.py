"""Training-step cost of moeheads models, side by side, as ratios measured in one run.

Two comparisons on a torchvision ResNet-18 (standard stem) at 96 px, each a full
training step (forward + backward + SGD step) on pre-made normalised float images,
data loading excluded:

- ``star / equimod``: STAR (16 experts, ``star`` router, ``ntxent`` + ``star_eq``)
  against EquiMod (``hard`` router with one expert per task, i.e. separate heads,
  ``ntxent`` + ``equimod``); both run three backbone passes (original + 2 views) and
  are built by :func:`moeheads.assembly.build.build_model` from a
  :class:`~moeheads.recipe.schema.Recipe`, with the recipe's optimiser. Target: <= 1.05.
- ``moeheads / lightly``: a moeheads SimCLR model (one expert, ``hard`` router, one
  ``inv`` task with ``ntxent``) against the same model from lightly's pieces
  (torchvision ResNet-18 with ``fc = Identity``, ``SimCLRProjectionHead(512, 512,
  128)``, ``NTXentLoss``); 2 views, the same optimiser. The heads have the same layers:
  ``Linear(512, 512) - ReLU - Linear(512, 128)`` with biases (``--simclr-bn`` puts
  BatchNorm after the hidden layer of both; lightly then also normalises its output
  with a BatchNorm where moeheads has a bias). Target: <= 1.02.

The variants run interleaved (one step each per repetition, in a rotating order) and
each ratio is reported as the ratio of the median step times (checked against the
target), the ratio of the fastest steps, and the median of the per-repetition ratios
with its interquartile range. One intra-op thread by default (``--threads``): on a
shared machine, parallel regions stall whenever one of their threads is descheduled,
which swamps the differences measured here. On the CPU, large freed buffers stay in
glibc's heap, as ``moeheads run`` sets it up (``--glibc-defaults`` leaves malloc alone);
the setting applies to every variant alike. Run:

    .venv/bin/python benchmarks/step.py                   # CPU, batch 32, about 3 min
    .venv/bin/python benchmarks/step.py --batch 64 --reps 15
    .venv/bin/python benchmarks/step.py --device cuda --batch 256 --precision bf16
    .venv/bin/python benchmarks/step.py --profile star    # operator table of one variant
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

from moeheads.assembly.build import build_model
from moeheads.assembly.model import PretrainModel
from moeheads.recipe.schema import Recipe
from moeheads.runtime.allocator import keep_cpu_buffers
from moeheads.train.optim import build_optimizer
from moeheads.views import NUM_PARAMS, PreparedViews

TEMPERATURE = 0.2
IMAGE_SIZE = 96
VARIANTS = ("star", "equimod", "moeheads_simclr", "lightly_simclr")
RATIOS = (("star", "equimod", 1.05), ("moeheads_simclr", "lightly_simclr", 1.02))

Step = Callable[[], None]


def recipe(
    name: str, heads: dict[str, Any], tasks: dict[str, Any], batch: int, original: bool
) -> Recipe:
    """A ResNet-18 / 96 px recipe with the given heads and tasks (SGD, lr 0.03)."""
    return Recipe.model_validate({
        "name": name,
        "data": {"dataset": {"name": "synthetic_shapes", "size": IMAGE_SIZE}},
        "views": {"size": IMAGE_SIZE, "num_views": 2, "original": original},
        "backbone": {"name": "torchvision:resnet18"},
        "heads": heads,
        "tasks": tasks,
        "optimizer": {"name": "sgd", "lr": 0.03, "momentum": 0.9, "weight_decay": 5e-4},
        "trainer": {"epochs": 1, "batch_size": batch, "precision": "fp32"},
    })


def recipes(batch: int, simclr_bn: bool) -> dict[str, Recipe]:
    """The recipes of the three moeheads variants."""
    inv = {"name": "ntxent", "temperature": TEMPERATURE}
    return {
        "star": recipe(
            "star", {"num_experts": 16, "router": {"name": "star"}},
            {"inv": inv, "eq": {"name": "star_eq", "temperature": TEMPERATURE}}, batch, True,
        ),
        "equimod": recipe(
            "equimod", {"num_experts": 2, "router": {"name": "hard"}},
            {"inv": inv, "eq": {"name": "equimod", "temperature": TEMPERATURE}}, batch, True,
        ),
        "moeheads_simclr": recipe(
            "simclr",
            {"num_experts": 1, "router": {"name": "hard"}, "hidden_features": [512],
             "batch_norm": simclr_bn},
            {"inv": inv}, batch, False,
        ),
    }


class LightlySimCLR(nn.Module):
    """SimCLR from lightly's pieces: ResNet-18 without fc, its projection head and loss."""

    def __init__(self, batch_norm: bool) -> None:
        super().__init__()
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        backbone = torchvision.models.resnet18(zero_init_residual=True)
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = SimCLRProjectionHead(512, 512, 128, batch_norm=batch_norm)
        self.criterion = NTXentLoss(temperature=TEMPERATURE)

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        """The NT-Xent loss of two views ``[B, 3, H, W]``."""
        z0 = self.head(self.backbone(x0).flatten(1))
        z1 = self.head(self.backbone(x1).flatten(1))
        return self.criterion(z0, z1)


def make_batch(batch: int, device: torch.device, seed: int = 0) -> PreparedViews:
    """Normalised float views ``[2, B, 3, 96, 96]``, originals and parameters."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, 3, IMAGE_SIZE, IMAGE_SIZE)
    return PreparedViews(
        views=torch.randn(2, *shape, generator=g).to(device),
        params=torch.randn(2, batch, NUM_PARAMS, generator=g).to(device),
        original=torch.randn(*shape, generator=g).to(device),
    )


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The autocast context of ``precision`` (disabled for fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def moeheads_step(
    model: PretrainModel, optimizer: torch.optim.Optimizer, batch: PreparedViews,
    device: torch.device, precision: str,
) -> Step:
    """One training step of a moeheads model, as the engine runs it."""

    def step() -> None:
        with autocast(device, precision):
            out = model(batch)
        out.loss.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def lightly_step(
    model: LightlySimCLR, optimizer: torch.optim.Optimizer, batch: PreparedViews,
    device: torch.device, precision: str,
) -> Step:
    """One training step of the lightly SimCLR model."""
    x0, x1 = batch.views.unbind(0)

    def step() -> None:
        with autocast(device, precision):
            loss = model(x0, x1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def build_steps(args: argparse.Namespace, device: torch.device) -> dict[str, Step]:
    """A step closure per variant, models seeded identically."""
    batch = make_batch(args.batch, device)
    steps: dict[str, Step] = {}
    built = recipes(args.batch, args.simclr_bn)
    for name, r in built.items():
        torch.manual_seed(0)
        model = build_model(r, (IMAGE_SIZE, IMAGE_SIZE)).to(device).train()
        optimizer = build_optimizer(model, r.optimizer, args.batch)
        steps[name] = moeheads_step(model, optimizer, batch, device, args.precision)
    torch.manual_seed(0)
    lightly = LightlySimCLR(args.simclr_bn).to(device).train()
    # the same optimiser as the moeheads SimCLR model, so the ratio compares the models
    optimizer = build_optimizer(lightly, built["moeheads_simclr"].optimizer, args.batch)
    steps["lightly_simclr"] = lightly_step(lightly, optimizer, batch, device, args.precision)
    return steps


def timed(step: Step, device: torch.device) -> float:
    """Wall time of one call of ``step`` in seconds."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tic = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - tic


def measure(
    steps: dict[str, Step], reps: int, warmup: int, device: torch.device
) -> dict[str, list[float]]:
    """Step times per variant: ``warmup`` untimed steps each, then ``reps`` interleaved."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timed(steps[name], device))
    return times


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def report(times: dict[str, list[float]]) -> None:
    """Print the median step times and both ratios with their spread."""
    print(f"{'variant':<16} {'median s':>9} {'q1':>8} {'q3':>8} {'min':>8}")
    for name, values in times.items():
        q1, q2, q3 = quartiles(values)
        print(f"{name:<16} {q2:9.3f} {q1:8.3f} {q3:8.3f} {min(values):8.3f}")
    print()
    print(f"{'ratio':<34} {'of medians':>10} {'of minima':>10} {'paired median':>14} "
          f"{'paired q1-q3':>14}  target (of medians)")
    for num, den, target in RATIOS:
        of_medians = statistics.median(times[num]) / statistics.median(times[den])
        of_minima = min(times[num]) / min(times[den])
        paired = [a / b for a, b in zip(times[num], times[den], strict=True)]
        q1, q2, q3 = quartiles(paired)
        verdict = "ok" if of_medians <= target else "MISSED"
        print(f"{num + ' / ' + den:<34} {of_medians:10.3f} {of_minima:10.3f} {q2:14.3f} "
              f"{q1:7.3f}-{q3:.3f}  <= {target} {verdict}")


def profile(step: Step, rows: int) -> None:
    """Print the operators of three steps of one variant, by self CPU time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    step()
    with torch_profile(activities=activities) as prof:
        for _ in range(3):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main() -> None:
    """Parse arguments, build the four variants and print their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch", type=int, default=32, help="images per step")
    parser.add_argument("--reps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--simclr-bn", action="store_true",
                        help="BatchNorm in both SimCLR heads (lightly's default)")
    parser.add_argument("--glibc-defaults", action="store_true",
                        help="leave glibc's malloc thresholds alone")
    parser.add_argument("--profile", choices=VARIANTS, default=None,
                        help="print the operator profile of one variant instead")
    parser.add_argument("--rows", type=int, default=30, help="rows of the profile table")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kept = device.type == "cpu" and not args.glibc_defaults and keep_cpu_buffers()
    steps = build_steps(args, device)
    print(f"ResNet-18, {IMAGE_SIZE} px, batch {args.batch}, {args.precision}, device "
          f"{device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"malloc={'large buffers kept' if kept else 'defaults'}")
    if args.profile:
        profile(steps[args.profile], args.rows)
        return
    times = measure(steps, args.reps, args.warmup, device)
    print(f"{args.reps} interleaved repetitions after {args.warmup} warm-up steps each\n")
    report(times)


if __name__ == "__main__":
    main()
