"""How fast each task's head converges, from a run's logged steps.

Per task ``t``, the logged loss ``L_t`` (unweighted) is smoothed by a moving average over
``window`` logged steps, giving ``S_t``. With ``S_0`` its first and ``S_end`` its last
value, the **steps to f** (``f = 95%`` by default) are the first logged step after which
``S_t`` stays at or below ``S_0 - f (S_0 - S_end)``: the loss has made ``f`` of its total
decrease and does not climb back. ``None`` when the loss did not decrease. Beside it, the
gradient norm each task sends into the backbone (``<task>/grad_norm``, logged by
training with ``monitor.grad_norms``), first and last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moeheads.rundir.metrics import read_metrics


@dataclass
class TaskCurve:
    """One task's logged loss and gradient norm over steps."""

    steps: list[int]
    loss: list[float]
    grad_norm: list[float | None]


def task_curves(records: Sequence[dict[str, Any]], tasks: Sequence[str]) -> dict[str, TaskCurve]:
    """The step records' loss and gradient norm of each task that has a loss."""
    steps = [r for r in records if r.get("kind") == "step"]
    return {t: TaskCurve([r["step"] for r in steps if t in r], [r[t] for r in steps if t in r],
                         [r.get(f"{t}/grad_norm") for r in steps if t in r])
            for t in tasks if any(t in r for r in steps)}


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average over up to ``window`` values."""
    return [sum(values[max(0, i - window + 1):i + 1]) / (i + 1 - max(0, i - window + 1))
            for i in range(len(values))]


def steps_to(steps: Sequence[int], loss: Sequence[float], fraction: float = 0.95,
             window: int = 5) -> int | None:
    """The first step after which the smoothed loss stays within ``1 - fraction`` of its
    total decrease from the end value (see the module docstring)."""
    if len(loss) < 2:
        return None
    smoothed = smooth(loss, window)
    start, end = smoothed[0], smoothed[-1]
    if end >= start:
        return None
    target = start - fraction * (start - end)
    above = [i for i, value in enumerate(smoothed) if value > target]
    return steps[above[-1] + 1] if above else steps[0]


def run_convergence(run_dir: Path, fraction: float = 0.95) -> dict[str, dict[str, Any]]:
    """Per task of a run: steps to ``fraction``, first and last gradient norm."""
    records = read_metrics(run_dir / "metrics.jsonl")
    tasks = _tasks(records)
    out = {}
    for task, curve in task_curves(records, tasks).items():
        norms = [n for n in curve.grad_norm if n is not None]
        out[task] = {"steps": steps_to(curve.steps, curve.loss, fraction),
                     "first_grad_norm": norms[0] if norms else None,
                     "last_grad_norm": norms[-1] if norms else None}
    return out


def _tasks(records: Sequence[dict[str, Any]]) -> list[str]:
    """Task names: the loss parts that have a ``<task>/weighted`` twin."""
    found = {k.split("/")[0] for r in records for k in r if k.endswith("/weighted")}
    return sorted(found)


def convergence_plots(run_dirs: Sequence[Path], folder: Path) -> list[Path]:
    """Overlay the runs' per-task loss and gradient-norm curves: ``convergence-loss.png``
    and (where logged) ``convergence-grad-norm.png`` in ``folder``."""
    from moeheads.eval.plots import line_plot

    loss, norms = {}, {}
    for run_dir in run_dirs:
        records = read_metrics(Path(run_dir) / "metrics.jsonl")
        for task, curve in task_curves(records, _tasks(records)).items():
            label = f"{Path(run_dir).name} {task}"
            loss[label] = (curve.steps, curve.loss)
            if any(n is not None for n in curve.grad_norm):
                norms[label] = (curve.steps, curve.grad_norm)
    written = [line_plot(folder / "convergence-loss.png", loss, title="Task losses",
                         xlabel="step", ylabel="loss")]
    if norms:
        written.append(line_plot(folder / "convergence-grad-norm.png", norms,
                                 title="Gradient norm each task sends into the backbone",
                                 xlabel="step", ylabel="||dL_t / dh||"))
    return written
