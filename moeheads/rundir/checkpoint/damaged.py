"""Damaged checkpoints: moved out of the way, never deleted, so a user can inspect them."""

from __future__ import annotations

import time
from pathlib import Path

from moeheads.rundir.checkpoint.format import CheckpointProblem

#: Where damaged checkpoints go, inside ``checkpoints/``.
DAMAGED_DIR = "damaged"


def set_aside(problem: CheckpointProblem) -> Path:
    """Move a damaged checkpoint (its sidecar and every file of its step) to
    ``checkpoints/damaged/<step>-<time>/``; the folder it went to.

    A resumed run then writes that step afresh without touching the damaged files, and
    pruning never deletes them.
    """
    directory = problem.path.parent
    stem = problem.path.stem  # step-000000008
    target = directory / DAMAGED_DIR / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    suffix = 1
    while target.exists():
        target, suffix = target.with_name(f"{target.name}-{suffix}"), suffix + 1
    target.mkdir(parents=True)
    for path in [problem.path, *directory.glob(f"{stem}.*")]:
        if path.exists():
            path.replace(target / path.name)
    (target / "REASON.txt").write_text(problem.reason + "\n")
    return target
