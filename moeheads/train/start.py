"""Where a run starts: fresh, from which checkpoint, or refused. Decided by rank 0 from the
run directory, so that a run directory keeps to one recipe and loses nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moeheads.errors import ConfigError, writing
from moeheads.recipe.io import dump_recipe
from moeheads.recipe.schema import Recipe
from moeheads.rundir.changes import changes_since, describe_changes
from moeheads.rundir.checkpoint import CheckpointProblem, resolve_checkpoint, scan_checkpoints
from moeheads.rundir.checkpoint.damaged import set_aside
from moeheads.rundir.checkpoint.format import SIDECAR_RE
from moeheads.rundir.lock import LOCK_NAME
from moeheads.rundir.metrics import MetricsLog


@dataclass(frozen=True)
class StartPlan:
    """Where a run starts, decided by rank 0 and shared with every process.

    Attributes:
        checkpoint: The sidecar to resume from (``None``: a fresh start).
        changes: Recipe fields changed since the checkpoint (resuming with
            ``allow_recipe_change``), ``field -> (old, new)``.
        note: A line for the start banner (e.g. where an earlier run was moved).
    """

    checkpoint: Path | None = None
    changes: dict[str, tuple[Any, Any]] | None = None
    note: str = ""


def plan_start(recipe: Recipe, resume: str, allow_recipe_change: bool = False) -> StartPlan:
    """A fresh start, or the checkpoint to continue (see :class:`~moeheads.train.engine.Trainer`).

    Raises:
        ConfigError: The checkpoint was trained with a different recipe and
            ``allow_recipe_change`` is false; the message names what differs and the ways on.
    """
    run_dir = recipe.run_dir
    if resume == "never":
        return StartPlan(note=move_aside(run_dir))
    note = ""
    if resume == "auto":
        valid, problems = scan_checkpoints(run_dir) if run_dir.is_dir() else ([], [])
        note = set_damaged_aside(problems, valid[0].step if valid else -1)
        if not valid:
            return StartPlan(note=note)
        info = valid[0]
    else:
        info = resolve_checkpoint(resume)
    if info.recipe_hash in (None, recipe.hash()):
        return StartPlan(info.path, note=note)
    changes = changes_since(info.path.parent.parent, recipe)
    if not allow_recipe_change:
        name = recipe.name
        raise ConfigError(
            f"{run_dir} holds a run of a different recipe ({describe_changes(changes)});"
            f" its checkpoints are kept. Give this run a new name (--set name={name}-2), "
            f"start over with --resume never (the earlier run is moved aside to "
            f"{name}.<time>), or continue its newest checkpoint with the changed recipe: "
            f"--resume {info.path} --allow-recipe-change"
        )
    return StartPlan(info.path, changes or {}, note)


def set_damaged_aside(problems: list[CheckpointProblem], resumed_step: int) -> str:
    """Move the damaged checkpoints newer than the one resumed to ``checkpoints/damaged/``
    (kept for inspection); the banner note naming each and why."""
    notes = []
    for problem in problems:
        match = SIDECAR_RE.match(problem.path.name)
        step = int(match[1]) if match else -1
        if step > resumed_step:
            kept = set_aside(problem)
            notes.append(f"skipped damaged checkpoint {problem.path.name} ({problem.reason}); "
                         f"its files are kept in {kept}")
    return "; ".join(notes)


def move_aside(run_dir: Path) -> str:
    """Move an earlier run's files (all but the lock) to ``<name>.<time>``; the banner note."""
    entries = [e for e in run_dir.iterdir() if e.name != LOCK_NAME] if run_dir.is_dir() else []
    if not entries:
        return ""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = run_dir.with_name(f"{run_dir.name}.{stamp}")
    suffix = 1
    while aside.exists():
        aside, suffix = aside.with_name(f"{run_dir.name}.{stamp}-{suffix}"), suffix + 1
    aside.mkdir()
    for entry in entries:
        entry.rename(aside / entry.name)
    return f"the earlier run was moved to {aside}"


def record_start(recipe: Recipe, plan: StartPlan, global_step: int,
                 say: Callable[[str], None]) -> None:
    """Rank 0: the recipe file, one metrics history up to the start, and any recipe change
    (the earlier recipe kept as ``recipe.step-<S>.yaml``, a ``recipe_change`` record)."""
    run_dir = recipe.run_dir
    recipe_file = run_dir / "recipe.yaml"
    if plan.changes is not None and recipe_file.is_file():
        recipe_file.replace(run_dir / f"recipe.step-{global_step}.yaml")
    tmp = recipe_file.with_suffix(".yaml.tmp")
    with writing(recipe_file, "recipe"):
        tmp.write_text(dump_recipe(recipe))
        tmp.replace(recipe_file)
    log = MetricsLog(run_dir / "metrics.jsonl", report=lambda message: say(f"note: {message}"))
    dropped = log.rewind(global_step)
    if dropped:
        say(f"note: dropped {dropped} metrics records written after step {global_step}, the "
            "checkpoint this run continues")
    if plan.changes is not None:
        log.write("recipe_change", step=global_step, checkpoint=str(plan.checkpoint),
                  changes={k: list(v) for k, v in plan.changes.items()})


def position(step: int, epochs_done: int) -> str:
    """Where a checkpoint stands, in the one wording the banner and advice share."""
    return f"step {step}, {epochs_done} epoch{'s' if epochs_done != 1 else ''} done"


def nan_advice(recipe: Recipe, source: str) -> str:
    """What to do after a non-finite loss: the newest valid checkpoint and a command."""
    run_dir = recipe.run_dir
    lower = f"optimizer.lr={recipe.optimizer.lr / 10:g}"
    valid = scan_checkpoints(run_dir)[0] if run_dir.is_dir() else []
    if not valid:
        return (f"no checkpoint had been written yet; start again with a lower learning "
                f"rate: moeheads run {source} --set {lower} --resume never")
    info = valid[0]
    return (f"the newest valid checkpoint is {info.path} ({position(info.step, info.epoch)}"
            f"); continue from it with a lower learning rate: moeheads run "
            f"{source} --set {lower} --resume {info.path} --allow-recipe-change")
