"""A trained model for evaluation, from a run directory, a checkpoint or a backbone export.

The model is rebuilt from the run's resolved ``recipe.yaml``:

- a run directory: its newest valid checkpoint (backbone, heads, predictors), or
  ``backbone.safetensors`` alone when it holds no valid checkpoint;
- a checkpoint sidecar ``<run>/checkpoints/step-<S>.json``: that checkpoint;
- a backbone export ``<run>/backbone.safetensors``: the backbone only (protocols that
  read the heads, ``cca`` and ``routing``, then refuse to run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from moeheads.assembly.build import build_backbone, build_model
from moeheads.assembly.model import PretrainModel
from moeheads.backbones import Backbone
from moeheads.errors import CheckpointError, ConfigError
from moeheads.heads import MoEHeads
from moeheads.recipe.io import load_recipe
from moeheads.recipe.schema import Recipe
from moeheads.rundir.checkpoint import CHECKPOINTS_DIR, load_checkpoint, resolve_checkpoint

BACKBONE_FILE = "backbone.safetensors"


@dataclass
class TrainedModel:
    """A trained model, in eval mode on its device.

    Attributes:
        run_dir: The run directory (evaluation results go to its ``eval/``).
        recipe: The run's resolved recipe.
        backbone: The backbone.
        model: The whole pretraining model (``None`` for a backbone export).
        source: The checkpoint sidecar or backbone file the weights came from.
        step: Optimiser steps of the checkpoint (``None`` when unknown).
    """

    run_dir: Path
    recipe: Recipe
    backbone: Backbone
    model: PretrainModel | None
    source: Path
    step: int | None

    def heads(self, protocol: str) -> MoEHeads:
        """The trained heads; a :class:`ConfigError` for a backbone export."""
        if self.model is None:
            raise ConfigError(f"{protocol} reads the heads, but {self.source} holds the backbone "
                              "only; give a run directory or a checkpoint")
        return self.model.encoder.heads


def run_dir_of(path: Path) -> Path:
    """The run directory a run directory, checkpoint sidecar or backbone file belongs to."""
    if path.is_dir():
        return path.parent if path.name == CHECKPOINTS_DIR else path
    parent = path.parent
    return parent.parent if parent.name == CHECKPOINTS_DIR else parent


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild the model of a run and load its trained weights.

    Args:
        path: A run directory, a checkpoint sidecar, or a ``backbone.safetensors`` file.
        device: Where the model is put.

    Raises:
        CheckpointError: The path, its recipe or its weights are missing or damaged.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist (expected a run directory or checkpoint)")
    run_dir = run_dir_of(path)
    recipe_file = run_dir / "recipe.yaml"
    if not recipe_file.is_file():
        raise CheckpointError(f"{recipe_file} not found: {path} is not inside a run directory")
    recipe = load_recipe(recipe_file)
    if path.is_file() and path.suffix == ".safetensors":
        return _backbone_only(run_dir, recipe, path, device)
    try:
        info = resolve_checkpoint(path)
    except CheckpointError:
        if path.is_dir() and (run_dir / BACKBONE_FILE).is_file():
            return _backbone_only(run_dir, recipe, run_dir / BACKBONE_FILE, device)
        raise
    size = recipe.views.size
    model = build_model(recipe, (size, size))  # the standardiser is restored from the weights
    load_checkpoint(info.path, model, restore_rng=False)
    model.to(device).eval()
    return TrainedModel(run_dir, recipe, model.backbone, model, info.path, info.step)


def _backbone_only(
    run_dir: Path, recipe: Recipe, file: Path, device: str | torch.device
) -> TrainedModel:
    from safetensors.torch import load_file

    backbone = build_backbone(recipe)
    try:
        backbone.module.load_state_dict(load_file(str(file)))
    except (RuntimeError, OSError) as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{file} does not fit the recipe's backbone: {first}") from None
    backbone.to(device).eval()
    return TrainedModel(run_dir, recipe, backbone, None, file, None)
