"""What a run directory holds: files only, no model building.

- :mod:`~moeheads.rundir.checkpoint`: checkpoint format, save, verification and load;
- :mod:`~moeheads.rundir.rng`: random-number-generator state as plain data;
- :mod:`~moeheads.rundir.export`: the backbone's weights alone;
- :mod:`~moeheads.rundir.metrics`: the ``metrics.jsonl`` file;
- :mod:`~moeheads.rundir.lock`: one writer per run directory;
- :mod:`~moeheads.rundir.changes`: what differs between a run's recipe and a new one;
- :mod:`~moeheads.rundir.files`: atomic writes, hashing and safetensors.

The model a run trains is assembled in :mod:`moeheads.assembly`.
"""
