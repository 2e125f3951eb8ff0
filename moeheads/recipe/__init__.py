"""The recipe: what a run is, as a validated YAML file.

- :mod:`~moeheads.recipe.schema`: :class:`~moeheads.recipe.schema.Recipe`, the whole
  recipe, assembled from one model per section: :mod:`~moeheads.recipe.data`
  (``data``, ``views``), :mod:`~moeheads.recipe.model` (``backbone``, ``heads``,
  ``tasks``), :mod:`~moeheads.recipe.training` (``optimizer``, ``schedule``,
  ``trainer``, ``monitor``) and :mod:`~moeheads.recipe.evaluation`; components named
  by a registry are :mod:`~moeheads.recipe.component`;
- :mod:`~moeheads.recipe.io`: reading and writing recipe files, ``--set`` overrides,
  errors that name the file, line and field;
- :mod:`~moeheads.recipe.catalog`: the recipes shipped inside the package;
- :mod:`~moeheads.recipe.user_modules`: a recipe's ``imports`` (your own components).

Nothing is imported here, so ``moeheads recipes`` reads the catalogue without loading
PyTorch; import the module you need.
"""
