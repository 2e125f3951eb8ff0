"""Bad inputs and options give a clear ConfigError (options) or ShapeError (tensors)."""

import pytest
import torch

from moeheads.assembly.objective import Objective
from moeheads.errors import ConfigError, ShapeError
from moeheads.losses import LOSSES, AugSelfLoss, STAREquivariantLoss, create_loss
from moeheads.losses.base import TaskInputs

INVARIANT = ["ntxent", "vicreg", "barlow", "byol"]


def _invariant(name: str):
    return create_loss(name, embed_dim=8, hidden_dim=16) if name == "byol" else create_loss(name)


def test_registry_names() -> None:
    expected = ["augself", "barlow", "byol", "equimod", "ntxent", "star_eq", "vicreg"]
    assert LOSSES.list() == expected


@pytest.mark.parametrize("name", INVARIANT)
def test_invariant_mismatched_shapes(name: str) -> None:
    with pytest.raises(ShapeError, match="differ in shape"):
        _invariant(name)(torch.randn(4, 8), torch.randn(5, 8))
    with pytest.raises(ShapeError, match=r"\[B, D\]"):
        _invariant(name)(torch.randn(2, 4, 8), torch.randn(2, 4, 8))


@pytest.mark.parametrize("name", INVARIANT)
def test_invariant_batch_of_one(name: str) -> None:
    with pytest.raises(ShapeError, match="at least 2"):
        _invariant(name)(torch.randn(1, 8), torch.randn(1, 8))


@pytest.mark.parametrize("name", INVARIANT)
def test_invariant_needs_two_views(name: str) -> None:
    with pytest.raises(ShapeError, match="at least 2 views"):
        _invariant(name).from_inputs(TaskInputs(views=torch.randn(1, 4, 8)))


@pytest.mark.parametrize("name", ["equimod", "star_eq"])
def test_equivariant_bad_shapes(name: str) -> None:
    loss = create_loss(name, embed_dim=8, param_embed_dim=4, hidden_dim=16)
    z, z_o, params = torch.randn(2, 4, 8), torch.randn(4, 8), torch.randn(2, 4, 11)
    with pytest.raises(ShapeError, match="param_dim is 11 but params has 9"):
        loss(z, z_o, params[..., :9])
    with pytest.raises(ShapeError, match="z_original must be"):
        loss(z, torch.randn(5, 8), params)
    with pytest.raises(ShapeError, match="params must be"):
        loss(z, z_o, torch.randn(3, 4, 11))
    with pytest.raises(ShapeError, match="embed_dim is 8"):
        loss(torch.randn(2, 4, 6), torch.randn(4, 6), params)
    with pytest.raises(ShapeError, match="at least 2"):
        loss(z[:, :1], z_o[:1], params[:, :1])


def test_augself_bad_shapes() -> None:
    loss = AugSelfLoss(in_features=8, hidden_dim=16)
    with pytest.raises(ShapeError, match="param_dim is 11 but params has 7"):
        loss(torch.randn(2, 4, 8), torch.randn(2, 4, 7))
    with pytest.raises(ShapeError, match="expects features"):
        loss(torch.randn(2, 4, 9), torch.randn(2, 4, 11))
    with pytest.raises(ShapeError, match="params must be"):
        loss(torch.randn(2, 4, 8), torch.randn(2, 3, 11))
    with pytest.raises(ConfigError, match="no columns"):
        AugSelfLoss(param_dim=4, color=1.0)
    with pytest.raises(ConfigError, match="enable at least one"):
        AugSelfLoss(crop=0.0, color=0.0)


def test_missing_step_input() -> None:
    loss = STAREquivariantLoss(embed_dim=8, param_embed_dim=4, hidden_dim=16)
    with pytest.raises(ConfigError, match="'original'"):
        loss.from_inputs(TaskInputs(views=torch.randn(2, 4, 8), params=torch.randn(2, 4, 11)))


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="unknown option 'temprature'"):
        create_loss("ntxent", temprature=0.1)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        create_loss("ntxent", temperature=0.0)
    with pytest.raises(ConfigError, match="did you mean 'vicreg'"):
        create_loss("vicrag")
    with pytest.raises(ConfigError, match="missing option 'name'"):
        Objective.build({"inv": {"weight": 1.0}})
