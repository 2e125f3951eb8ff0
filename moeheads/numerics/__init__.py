"""Numerical helpers that both training (its monitor) and evaluation use: backbone
features of a dataset, k-nearest-neighbour classification and canonical correlation."""
