"""Training checkpoints in a run directory: atomic save, verification and resume.

A checkpoint is a safetensors weights file, a weights-only torch file with the
training state, and a JSON sidecar written last (see
:mod:`~moeheads.rundir.checkpoint.format`). :mod:`~moeheads.rundir.checkpoint.save`
writes one, :mod:`~moeheads.rundir.checkpoint.scan` finds and verifies them and
:mod:`~moeheads.rundir.checkpoint.load` restores one;
:func:`moeheads.rundir.export.export_backbone` writes the backbone alone.

Example:
    >>> from torch import nn
    >>> from moeheads.rundir.checkpoint import TrainingState, load_checkpoint, save_checkpoint
    >>> import tempfile
    >>> run_dir = tempfile.mkdtemp()
    >>> info = save_checkpoint(run_dir, TrainingState(nn.Linear(2, 2), step=3, epoch=1))
    >>> load_checkpoint(run_dir, nn.Linear(2, 2)).info.step
    3
"""

from moeheads.rundir.checkpoint.format import (
    CHECKPOINTS_DIR,
    FORMAT_VERSION,
    CheckpointInfo,
    CheckpointProblem,
    CheckpointWarning,
    FileRecord,
    LoadedCheckpoint,
    Stateful,
    TrainingState,
)
from moeheads.rundir.checkpoint.load import load_checkpoint
from moeheads.rundir.checkpoint.save import save_checkpoint
from moeheads.rundir.checkpoint.scan import (
    latest_valid_checkpoint,
    resolve_checkpoint,
    scan_checkpoints,
    verify_checkpoint,
)

__all__ = [
    "CHECKPOINTS_DIR",
    "FORMAT_VERSION",
    "CheckpointInfo",
    "CheckpointProblem",
    "CheckpointWarning",
    "FileRecord",
    "LoadedCheckpoint",
    "Stateful",
    "TrainingState",
    "latest_valid_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
    "scan_checkpoints",
    "verify_checkpoint",
]
