"""Submitting a sweep through submitit: one Slurm job array, or local subprocesses.

Each run becomes one :class:`SweepTask`, a picklable callable that runs the sweep's run
``index`` with ``resume="auto"``. On several processes (``gpus_per_node`` > 1 or
``nodes`` > 1) each process reads its rank from submitit's job environment (Slurm's
``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID`` and node list) and sets the
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` variables that
:mod:`moeheads.runtime.distributed` reads. When Slurm preempts a task or its time runs
out, submitit signals it ahead of the kill; the task hands back a copy of itself, is
requeued, and continues from its newest checkpoint.

Example:
    >>> from moeheads.experiments.sweep import load_sweep
    >>> from moeheads.experiments.launch import submit_sweep
    >>> plan = load_sweep("paper_experts_stl10")  # doctest: +SKIP
    >>> submitted = submit_sweep(plan, "slurm", LauncherOptions(partition="gpu",
    ...                          gpus_per_node=1, time_min=2880))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from moeheads.errors import ConfigError
from moeheads.experiments.launch_options import LauncherOptions, parse_slurm_pairs
from moeheads.experiments.plan import SweepPlan, SweepRun
from moeheads.experiments.sweep import run_status, run_sweep

__all__ = [
    "LAUNCHERS",
    "Submission",
    "Submitted",
    "SweepTask",
    "distributed_environment",
    "launch_sweep",
    "make_executor",
    "submit_sweep",
]

#: The launchers ``moeheads sweep --launcher`` accepts.
LAUNCHERS = ("slurm", "local")


def _submitit() -> Any:
    try:
        import submitit
    except ModuleNotFoundError:
        raise ConfigError("--launcher needs submitit: pip install 'moeheads[cluster]'") from None
    return submitit


def distributed_environment(job: Any) -> dict[str, str]:
    """The torch.distributed variables of one process of a submitit job (empty for a
    single process).

    Args:
        job: A ``submitit.JobEnvironment`` (rank, task and node counts, host names).
    """
    if job.num_tasks <= 1:
        return {}
    port = 20000 + zlib.crc32(str(job.job_id).encode()) % 20000  # one per array task
    return {"RANK": str(job.global_rank), "WORLD_SIZE": str(job.num_tasks),
            "LOCAL_RANK": str(job.local_rank),
            "LOCAL_WORLD_SIZE": str(job.num_tasks // max(job.num_nodes, 1)),
            "MASTER_ADDR": job.hostnames[0], "MASTER_PORT": str(port)}


class SweepTask:
    """Run ``plan.runs[index]`` (resuming its newest checkpoint) in a submitit job.

    Args:
        plan: The sweep.
        index: The run's index in the sweep.
        cwd: The directory relative paths in the recipe start from (the submitting
            process's working directory).
    """

    def __init__(self, plan: SweepPlan, index: int, cwd: str | os.PathLike[str]) -> None:
        self.plan, self.index, self.cwd = plan, index, str(cwd)

    def __call__(self) -> str:
        """Run the run; returns its state (``done``)."""
        os.chdir(self.cwd)
        os.environ.update(distributed_environment(_submitit().JobEnvironment()))
        (status,) = run_sweep(self.plan, index=self.index, resume="auto")
        return status.state

    def checkpoint(self) -> Any:
        """What submitit requeues on preemption or time-out: this task again (the run
        resumes from its newest checkpoint)."""
        return _submitit().helpers.DelayedSubmission(SweepTask(self.plan, self.index, self.cwd))

    __submitit_checkpoint__ = checkpoint


def make_executor(launcher: str, folder: Path, options: LauncherOptions, name: str) -> Any:
    """A submitit executor for ``launcher`` (``slurm`` or ``local``) writing its files
    (submission script, logs, pickles) to ``folder``.

    Raises:
        ConfigError: An unknown launcher, or submitit missing.
    """
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher: {' or '.join(LAUNCHERS)}, got {launcher!r}")
    submitit = _submitit()
    if launcher == "slurm":
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm",
                                         slurm_max_num_timeout=options.max_requeues)
        executor.update_parameters(**options.slurm_parameters(name))
        return executor
    if options.nodes != 1:
        raise ConfigError(f"launcher.nodes: the local launcher runs on one node, got "
                          f"{options.nodes}")
    executor = submitit.LocalExecutor(folder=folder, max_num_timeout=options.max_requeues)
    executor.update_parameters(timeout_min=options.time_min,
                               tasks_per_node=options.tasks_per_node,
                               gpus_per_node=options.gpus_per_node)
    return executor


@dataclass
class Submitted:
    """A run handed to an executor, and its submitit job."""

    run: SweepRun
    job: Any

    def describe(self) -> str:
        """``<run>: done``, or ``<run>: failed (<last line of the error>); log: <file>``."""
        error = self.job.exception()
        if error is None:
            return f"{self.run.name}: done"
        text = str(error).strip()
        last = text.splitlines()[-1] if text else type(error).__name__
        return f"{self.run.name}: failed ({last}); log: {self.job.paths.stdout}"


@dataclass
class Submission:
    """A submitted sweep: its executor, the runs submitted and (local) those still queued."""

    executor: Any
    submitted: list[Submitted]
    queued: list[tuple[SweepRun, SweepTask]] = field(default_factory=list)

    def wait(self, on_done: Callable[[str], None] = print, poll_s: float = 0.5) -> int:
        """Wait for every run (submitting queued ones as others finish), telling
        ``on_done`` one status line per run as it ends; returns how many failed."""
        running, failed = list(self.submitted), 0
        while running:
            finished = [item for item in running if item.job.done()]
            for item in finished:
                running.remove(item)
                line = item.describe()
                failed += not line.endswith(": done")
                on_done(line)
                if self.queued:
                    run, task = self.queued.pop(0)
                    item = Submitted(run, self.executor.submit(task))
                    self.submitted.append(item)
                    running.append(item)
            if not finished:
                time.sleep(poll_s)
        return failed


def _pending(plan: SweepPlan) -> list[SweepRun]:
    statuses = run_status(plan)
    changed = [s.run.name for s in statuses if s.state == "changed"]
    if changed:
        raise ConfigError(
            f"{plan.folder}: {', '.join(changed)} finished with other training settings than "
            "the recipe now gives; give the sweep another name (--name) or remove those runs")
    return [s.run for s in statuses if s.state != "done"]


def submit_sweep(plan: SweepPlan, launcher: str, options: LauncherOptions,
                 folder: Path | None = None) -> Submission:
    """Submit the sweep's unfinished runs: on Slurm as one job array, locally as
    subprocesses, ``options.parallel`` (default 1) at once (the rest are submitted by
    :meth:`Submission.wait` as earlier ones end).

    Args:
        plan: The sweep.
        launcher: ``slurm`` or ``local``.
        options: Resources of each run.
        folder: Where submitit writes its files (default ``<sweep folder>/submitit``).

    Raises:
        ConfigError: An unknown launcher, submitit missing, or a finished run trained
            with other settings than the plan's.
    """
    runs = _pending(plan)
    executor = make_executor(launcher, folder or plan.folder / "submitit", options,
                             plan.folder.name)
    plan.write_manifest()
    tasks = [(run, SweepTask(plan, run.index, Path.cwd())) for run in runs]
    if launcher == "slurm":
        with executor.batch():
            jobs = [executor.submit(task) for _, task in tasks]
        return Submission(executor, [Submitted(run, job)
                                     for (run, _), job in zip(tasks, jobs, strict=True)])
    width = options.parallel or 1
    first = [Submitted(run, executor.submit(task)) for run, task in tasks[:width]]
    return Submission(executor, first, tasks[width:])


def launch_sweep(plan: SweepPlan, launcher: str, options: Mapping[str, Any],
                 slurm: Sequence[str], console: Console) -> None:
    """``moeheads sweep --launcher``: submit the plan with the recipe's ``launcher:`` block
    updated by ``options`` (``None`` values left out) and ``slurm`` (``KEY=VALUE``); on
    Slurm print the array's job id, locally wait and print one status line per run.

    Raises:
        ConfigError: Bad launcher options, or (local) when a run failed.
    """
    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False, soft_wrap=True)

    resolved = LauncherOptions.from_block(plan.launcher).updated(**options)
    resolved = resolved.updated(slurm=parse_slurm_pairs(slurm)) if slurm else resolved
    submission = submit_sweep(plan, launcher, resolved)
    if not submission.submitted:
        say(f"every run of {plan.folder} is done (moeheads compare {plan.folder})")
        return
    folder = submission.executor.folder
    if launcher == "slurm":
        first = submission.submitted[0].job.job_id.split("_")[0]
        say(f"submitted {len(submission.submitted)} runs as Slurm job array {first} "
            f"(logs in {folder}); moeheads sweep ... --dry-run shows their state")
        return
    say(f"running {len(submission.submitted) + len(submission.queued)} runs through "
        f"submitit (logs in {folder})")
    failed = submission.wait(say)
    if failed:
        raise ConfigError(f"{failed} run(s) of {plan.folder} failed (logs above); the same "
                          "command continues them")
    say(f"sweep finished: {plan.folder} (moeheads compare {plan.folder})")
