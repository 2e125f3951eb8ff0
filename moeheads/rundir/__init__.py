"""What a run directory is: the layer below training and evaluation.

- :mod:`~moeheads.rundir.build`: the model and datasets a recipe describes;
- :mod:`~moeheads.rundir.model`: the pretraining model (encoder, objective, target);
- :mod:`~moeheads.rundir.checkpoint`: checkpoint format, save, verification and load;
- :mod:`~moeheads.rundir.rng`: random-number-generator state as plain data;
- :mod:`~moeheads.rundir.export`: the backbone's weights alone;
- :mod:`~moeheads.rundir.metrics`: the ``metrics.jsonl`` file;
- :mod:`~moeheads.rundir.distributed`: devices and the process group;
- :mod:`~moeheads.rundir.files`: atomic writes, hashing and safetensors.
"""
