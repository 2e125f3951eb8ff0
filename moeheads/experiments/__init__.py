"""Experiments over many runs: sweeps of recipe settings and seeds, and their comparison.

``moeheads sweep`` and ``moeheads compare SWEEP`` are thin layers over
:func:`~moeheads.experiments.sweep.run_sweep` and
:func:`~moeheads.experiments.table.compare_sweep`.
"""
