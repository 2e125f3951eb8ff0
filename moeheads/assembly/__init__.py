"""Model assembly: a recipe turned into the model, its objective and its data.

- :mod:`~moeheads.assembly.build`: datasets, backbone, heads, objective and the
  pretraining model a recipe describes;
- :mod:`~moeheads.assembly.model`: :class:`~moeheads.assembly.model.PretrainModel`
  (encoder, heads, objective, optional EMA target) and one training step's output;
- :mod:`~moeheads.assembly.objective`: :class:`~moeheads.assembly.objective.Objective`,
  task losses composed over the heads' output (it reads
  :class:`~moeheads.heads.HeadOutput`, so it sits above both ``heads`` and ``losses``);
- :mod:`~moeheads.assembly.check`: every component built on the meta device, so a bad
  recipe fails before anything is written.

Training and evaluation both build their models here; the run directory
(:mod:`moeheads.rundir`) only stores what they produce.
"""
