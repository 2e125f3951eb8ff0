import io
import random

import numpy as np
import pytest
import torch

from moeheads.errors import CheckpointError
from moeheads.rundir.rng import capture_rng_state, restore_rng_state


def _draw(gen: torch.Generator) -> tuple[object, ...]:
    return (
        torch.rand(4).tolist(),
        random.random(),
        random.gauss(0, 1),
        np.random.rand(2).tolist(),
        torch.rand(3, generator=gen).tolist(),
    )


def test_state_survives_weights_only_round_trip() -> None:
    gen = torch.Generator().manual_seed(1)
    random.gauss(0, 1)  # leave a cached Gaussian in the state
    buffer = io.BytesIO()
    torch.save(capture_rng_state({"g": gen}), buffer)
    expected = _draw(gen)
    buffer.seek(0)
    restore_rng_state(torch.load(buffer, weights_only=True), {"g": gen})
    assert _draw(gen) == expected


def test_unknown_generator_is_an_error() -> None:
    state = capture_rng_state()
    with pytest.raises(CheckpointError, match="'loader'"):
        restore_rng_state(state, {"loader": torch.Generator()})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_state_round_trip() -> None:
    torch.rand(1, device="cuda")  # initialise CUDA in this process
    state = capture_rng_state()
    expected = torch.rand(4, device="cuda")
    restore_rng_state(state)
    torch.testing.assert_close(torch.rand(4, device="cuda"), expected)
