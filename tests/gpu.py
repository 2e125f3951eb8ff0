"""The device of the ``gpu``-marked tests: CUDA, or ``MOEHEADS_TEST_DEVICE`` for a dry run.

``MOEHEADS_TEST_DEVICE=cpu pytest -m gpu`` runs them on the CPU (slowly, and without
what only CUDA has), which checks that they work before a GPU is at hand.
"""

import os

import pytest
import torch

DEVICE = torch.device(os.environ.get("MOEHEADS_TEST_DEVICE", "cuda"))

needs_device = pytest.mark.skipif(
    DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="needs CUDA"
)
