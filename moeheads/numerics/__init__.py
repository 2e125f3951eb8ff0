"""Numerical helpers shared across layers: backbone features of a dataset,
k-nearest-neighbour classification, canonical correlation, confidence intervals, and
BatchNorm with per-group statistics (used by the expert bank and the equivariant
predictor alike)."""
