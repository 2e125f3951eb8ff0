"""Slurm: the job a process runs in, and requeueing it after a preemption checkpoint."""

from __future__ import annotations

import os
import shutil
import subprocess

from moeheads.errors import ConfigError


def slurm_job_id() -> str | None:
    """The id ``scontrol`` knows this job by (``<array>_<task>`` in a job array), or ``None``
    outside Slurm."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def requeue_job(job_id: str) -> None:
    """``scontrol requeue JOB``: Slurm puts the job back in the queue; when it starts again,
    its command runs again (``moeheads run ... --resume auto`` continues the checkpoint).

    Raises:
        ConfigError: ``scontrol`` is missing or refuses.
    """
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        raise ConfigError(f"cannot requeue Slurm job {job_id}: scontrol is not on PATH")
    done = subprocess.run([scontrol, "requeue", job_id], capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"scontrol requeue {job_id} failed: {done.stderr.strip()}")


def requeue_this_job() -> str:
    """Requeue the Slurm job this process runs in; a line saying what was done.

    Raises:
        ConfigError: ``scontrol`` is missing or refuses.
    """
    job = slurm_job_id()
    if job is None:
        return "--requeue: not running under Slurm (no SLURM_JOB_ID); not requeued"
    requeue_job(job)
    return f"requeued Slurm job {job}; it resumes from the checkpoint"
