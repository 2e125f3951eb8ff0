"""Experiments over many runs: sweeps of recipe settings and seeds, and their comparison.

``moeheads sweep`` and ``moeheads compare SWEEP`` are thin layers over
:func:`~moeheads.experiments.sweep.run_sweep`,
:func:`~moeheads.experiments.launch.submit_sweep` (a sweep through submitit, on Slurm or
local subprocesses) and :func:`~moeheads.experiments.table.compare_sweep`.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"LauncherOptions": "moeheads.experiments.launch_options",
         "parse_slurm_pairs": "moeheads.experiments.launch_options",
         "submit_sweep": "moeheads.experiments.launch",
         "launch_sweep": "moeheads.experiments.launch",
         "LAUNCHERS": "moeheads.experiments.launch"}


def __getattr__(name: str) -> Any:
    """The launcher's names, imported on first use (the package itself stays light)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'moeheads.experiments' has no attribute {name!r}")
