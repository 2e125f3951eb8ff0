"""Training support: checkpoints of a run directory and RNG state capture."""
