"""Running a sweep: its runs one after another through :func:`moeheads.api.run`.

A run is finished when its folder holds ``sweep-run.json`` (written after its evaluation
and report); a rerun skips finished runs and continues an interrupted one from its
newest checkpoint (``resume="auto"``). A finished run whose training settings differ from
the plan's (the recipe was edited since) is ``changed``: the sweep refuses to run on
rather than mix two recipes in one table. ``index`` runs one run alone, for a job array or
one launcher per run.

Example:
    >>> from moeheads.experiments.sweep import load_sweep, run_sweep
    >>> plan = load_sweep("study_fashion_mnist", seeds=[0])  # doctest: +SKIP
    >>> [r.name for r in plan.runs][:2]  # doctest: +SKIP
    ['simclr-seed0', 'equimod-seed0']
    >>> run_sweep(plan)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from moeheads.api import RunResults, resolve_recipe, run, validate
from moeheads.errors import ConfigError
from moeheads.experiments.plan import SweepPlan, SweepRun, SweepSpec, parse_grid, plan_sweep
from moeheads.recipe.catalog import resolve_recipe_path
from moeheads.recipe.io import apply_overrides, load_recipe
from moeheads.recipe.schema import Recipe

__all__ = ["DONE", "RunStatus", "check_runs", "load_sweep", "run_status", "run_sweep",
           "status_table"]

#: The file that marks a finished run of a sweep.
DONE = "sweep-run.json"


@dataclass(frozen=True)
class RunStatus:
    """A run's state: ``done``, ``changed`` (done, with other training settings than the
    plan's), ``partial`` (a folder, no finish mark) or ``pending``."""

    run: SweepRun
    state: str
    folder: Path


def load_sweep(
    recipe_path: str | os.PathLike[str],
    overrides: Sequence[str] = (),
    grid: Sequence[str] | Mapping[str, list[Any]] = (),
    seeds: Sequence[int] = (),
    name: str | None = None,
) -> SweepPlan:
    """The plan of a sweep recipe, with command-line overrides, grid entries and seeds.

    Args:
        recipe_path: A recipe YAML file, with or without ``sweep:`` and ``launcher:``
            blocks, or the name of a shipped sweep or recipe.
        overrides: ``FIELD.PATH=VALUE`` settings for every run.
        grid: ``FIELD.PATH=V1,V2`` entries (or a mapping) added to the block's grid.
        seeds: Seeds (replacing the block's).
        name: The sweep folder's name (replacing the block's).

    Raises:
        ConfigError: A missing or invalid recipe file, sweep block, or run recipe.
    """
    path = resolve_recipe_path(recipe_path, sweep=True)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a YAML mapping")
    spec = SweepSpec.from_block(data.pop("sweep", None))
    launcher = data.pop("launcher", None)
    if launcher is not None and not isinstance(launcher, dict):
        raise ConfigError(f"{path}: launcher: must be a mapping (partition, nodes, ...)")
    extra = parse_grid(grid) if not isinstance(grid, Mapping) else dict(grid)
    spec = spec.updated(extra, seeds, name)
    plan = plan_sweep(apply_overrides(data, list(overrides)), spec, source=str(path),
                      launcher=launcher or {})
    check_runs(plan)
    return plan


def _model_key(recipe: Recipe) -> str:
    """What the recipe check depends on: everything but the run's name, seed and folder
    (the fields a sweep sets per seed)."""
    fields = recipe.model_dump(mode="json", exclude={"name", "seed", "output_dir"})
    return json.dumps(fields, sort_keys=True, default=str)


def check_runs(plan: SweepPlan) -> None:
    """Check every run's recipe before any training: each run's fields, and the
    components, model and evaluation stages once per distinct recipe (runs that differ
    only in seed share one check).

    Raises:
        ConfigError: Naming the first run whose recipe is invalid.
    """
    checked: set[str] = set()
    for sweep_run in plan.runs:
        try:
            recipe = resolve_recipe(sweep_run.recipe)
            key = _model_key(recipe)
            if key not in checked:
                validate(recipe)
                checked.add(key)
        except ConfigError as error:
            raise ConfigError(f"sweep run {sweep_run.name}: {error}") from None


def _same_training(folder: Path, sweep_run: SweepRun) -> bool:
    try:
        stored = load_recipe(folder / "recipe.yaml")
    except ConfigError:
        return False
    return stored.hash() == Recipe.model_validate(sweep_run.recipe).hash()


def _status(plan: SweepPlan, sweep_run: SweepRun) -> RunStatus:
    folder = plan.folder / sweep_run.name
    state = "done" if (folder / DONE).is_file() else "partial" if folder.is_dir() else "pending"
    if state == "done" and not _same_training(folder, sweep_run):
        state = "changed"
    return RunStatus(sweep_run, state, folder)


def run_status(plan: SweepPlan) -> list[RunStatus]:
    """Each run's state, from its folder."""
    return [_status(plan, sweep_run) for sweep_run in plan.runs]


def status_table(statuses: Sequence[RunStatus]) -> Table:
    """The runs as a rich table: index, name, state and the values their setting sets."""
    table = Table(show_header=True, header_style="bold", box=None)
    for column in ("index", "run", "state", "values"):
        table.add_column(column)
    for status in statuses:
        values = " ".join(f"{k}={v}" for k, v in status.run.values.items())
        table.add_row(str(status.run.index), status.run.name, status.state, values)
    return table


def _refuse_changed(plan: SweepPlan, statuses: list[RunStatus]) -> None:
    changed = [s.run.name for s in statuses if s.state == "changed"]
    if changed:
        raise ConfigError(
            f"{plan.folder}: {', '.join(changed)} finished with other training settings than "
            "the recipe now gives; give the sweep another name (--name) or remove those runs")


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _write_done(folder: Path, sweep_run: SweepRun, results: RunResults, seconds: float) -> None:
    record = {
        "name": sweep_run.name, "setting": sweep_run.setting, "seed": sweep_run.seed,
        "values": sweep_run.values, "epochs": results.epochs, "steps": results.steps,
        "seconds": round(seconds, 1),
        "evaluations": {e.path.stem: e.summary for e in results.evaluations},
    }
    temporary = folder / f".{DONE}.tmp"
    temporary.write_text(json.dumps(record, indent=2, default=str))
    temporary.replace(folder / DONE)


def run_sweep(
    plan: SweepPlan,
    index: int | None = None,
    resume: str = "auto",
    runner: Callable[..., RunResults] = run,
    on_run: Callable[[RunStatus], None] | None = None,
    **run_options: Any,
) -> list[RunStatus]:
    """Run the sweep's unfinished runs one after another (or run ``index`` alone).

    Args:
        plan: The sweep (see :func:`load_sweep`).
        index: Run only this run (0-based; a finished run is skipped all the same).
        resume: Passed to :func:`moeheads.run` for each run (``auto`` continues an
            interrupted run from its newest checkpoint).
        runner: The function that runs one recipe (:func:`moeheads.run`).
        on_run: Called with each run's status before it starts or is skipped.
        **run_options: Passed to ``runner`` (``console=...``).

    Returns:
        The status of the runs it looked at, after running them.

    Raises:
        ConfigError: ``index`` out of range, or a finished run trained with other settings
            than the plan's.
        MoeheadsError: Whatever a run raises; the runs before it stay finished.
    """
    statuses = run_status(plan)
    if index is not None:
        if not 0 <= index < len(statuses):
            raise ConfigError(f"--index {index}: the sweep has runs 0 to {len(statuses) - 1}")
        statuses = [statuses[index]]
    _refuse_changed(plan, statuses)
    if _is_main_process():
        plan.write_manifest()
    done = []
    for status in statuses:
        if status.state != "done":  # another process (an array task) may have finished it
            status = _status(plan, status.run)
            _refuse_changed(plan, [status])
        if on_run is not None:
            on_run(status)
        if status.state != "done":
            started = time.perf_counter()
            results = runner(status.run.recipe, resume=resume, **run_options)
            if _is_main_process():
                _write_done(status.folder, status.run, results, time.perf_counter() - started)
            status = RunStatus(status.run, "done", status.folder)
        done.append(status)
    return done
