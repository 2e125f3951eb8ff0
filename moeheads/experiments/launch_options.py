"""Where and how a sweep's runs are submitted: a recipe's ``launcher:`` block and the
``moeheads sweep --launcher`` options, merged (the command line wins)::

    launcher:
      partition: gpu          # Slurm partition
      account: my_lab         # Slurm account
      nodes: 1                # nodes per run
      gpus_per_node: 4        # one process per GPU (torch.distributed across them)
      cpus_per_task: 10       # CPU cores per process
      mem_gb: 64              # memory per node, GB
      time_min: 1440          # wall-clock limit per attempt, minutes
      parallel: 4             # runs at once (a job array's %N; local: subprocesses)
      max_requeues: 3         # resubmissions after preemption or time-out
      slurm: {qos: high, constraint: a100}   # any other sbatch option, as KEY: VALUE

Every field is optional; a run needs no GPU when ``gpus_per_node`` is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from moeheads.errors import ConfigError

__all__ = ["LauncherOptions", "parse_slurm_pairs"]

_INTEGERS = ("nodes", "gpus_per_node", "cpus_per_task", "mem_gb", "time_min", "parallel",
             "max_requeues")


@dataclass(frozen=True)
class LauncherOptions:
    """The resources of each run of a submitted sweep.

    Attributes:
        partition: Slurm partition (``None``: the cluster's default).
        account: Slurm account to charge.
        nodes: Nodes per run.
        gpus_per_node: GPUs per node; one process runs per GPU (at least one process).
        cpus_per_task: CPU cores per process.
        mem_gb: Memory per node in GB.
        time_min: Wall-clock limit of one attempt, in minutes.
        parallel: Runs at once (Slurm: the array's throttle; local: subprocesses).
        max_requeues: How often a preempted or timed-out run is resubmitted.
        slurm: Further sbatch options (``{"qos": "high"}`` -> ``#SBATCH --qos=high``).
    """

    partition: str | None = None
    account: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_gb: int | None = None
    time_min: int = 24 * 60
    parallel: int | None = None
    max_requeues: int = 3
    slurm: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_block(cls, block: Any) -> LauncherOptions:
        """The options of a recipe's ``launcher:`` block (``None``: the defaults).

        Raises:
            ConfigError: An unknown field, or a value of the wrong kind.
        """
        if block is None:
            return cls()
        if not isinstance(block, Mapping):
            raise ConfigError("launcher: must be a mapping (partition, nodes, gpus_per_node, ...)")
        return cls().updated(**dict(block))

    def updated(self, **changes: Any) -> LauncherOptions:
        """These options with ``changes`` applied (``None`` values are left out; ``slurm``
        entries are added to the existing ones).

        Raises:
            ConfigError: An unknown field, or a value of the wrong kind.
        """
        names = [f.name for f in fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ConfigError(f"launcher.{unknown[0]}: unknown field ({', '.join(names)})")
        values = {k: v for k, v in changes.items() if v is not None}
        for key in _INTEGERS:
            if key in values and (isinstance(values[key], bool)
                                  or not isinstance(values[key], int) or values[key] < 0):
                raise ConfigError(f"launcher.{key}: a non-negative integer, got {values[key]!r}")
        if values.get("nodes") == 0 or values.get("time_min") == 0 or values.get("parallel") == 0:
            raise ConfigError("launcher.nodes, time_min and parallel must be at least 1")
        for key in ("partition", "account"):
            if key in values:
                values[key] = str(values[key])
        if "slurm" in values:
            extra = values["slurm"]
            if not isinstance(extra, Mapping):
                raise ConfigError("launcher.slurm: must map sbatch option names to values")
            values["slurm"] = {**self.slurm, **{str(k): str(v) for k, v in extra.items()}}
        return replace(self, **values)

    @property
    def tasks_per_node(self) -> int:
        """Processes per node: one per GPU, at least one."""
        return max(self.gpus_per_node, 1)

    def slurm_parameters(self, name: str) -> dict[str, Any]:
        """The parameters of ``submitit.AutoExecutor.update_parameters`` for Slurm."""
        parameters: dict[str, Any] = {
            "name": name, "nodes": self.nodes, "tasks_per_node": self.tasks_per_node,
            "timeout_min": self.time_min, "stderr_to_stdout": True,
        }
        optional = {"gpus_per_node": self.gpus_per_node or None,
                    "cpus_per_task": self.cpus_per_task, "mem_gb": self.mem_gb,
                    "slurm_partition": self.partition, "slurm_account": self.account,
                    "slurm_array_parallelism": self.parallel,
                    "slurm_additional_parameters": dict(self.slurm) or None}
        parameters.update({k: v for k, v in optional.items() if v is not None})
        return parameters


def parse_slurm_pairs(entries: Sequence[str]) -> dict[str, str]:
    """``["qos=high", "constraint=a100"]`` -> ``{"qos": "high", "constraint": "a100"}``.

    Raises:
        ConfigError: An entry without ``=``.
    """
    pairs: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm expects KEY=VALUE (an sbatch option), got {entry!r}")
        pairs[key.strip().lstrip("-").replace("-", "_")] = value.strip()
    return pairs
