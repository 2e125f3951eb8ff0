"""The objective: weighted task losses plus router auxiliary losses, any pairing."""

import pytest
import torch

from moeheads import HeadOutput, MoEHeads
from moeheads.assembly.objective import Objective, TaskSpec
from moeheads.errors import ConfigError
from moeheads.losses import EMA, STAREquivariantLoss, VICRegLoss

EMBED = 16


def _heads(router: str = "star", **router_options: object) -> MoEHeads:
    return MoEHeads.build(
        in_features=32,
        tasks=["inv", "eq"],
        num_experts=4,
        router=router,
        router_options=router_options,
        out_features=EMBED,
        hidden_features=[32],
    )


def _step(heads: MoEHeads) -> dict:
    h_views, h_original = torch.randn(2, 8, 32), torch.randn(8, 32)
    return {
        "views": heads(h_views),
        "original": heads(h_original),
        "params": torch.randn(2, 8, 11),
        "features": h_views,
    }


def test_vicreg_with_star_eq_on_star_heads() -> None:
    heads = MoEHeads.build(in_features=32, tasks=["inv", "eq"], num_experts=4, router="star")
    objective = Objective({"inv": VICRegLoss(), "eq": TaskSpec(STAREquivariantLoss(), 0.5)})
    step = _step(heads)
    out = objective(**step)
    inv = VICRegLoss()(*step["views"].embeddings["inv"]).loss
    torch.testing.assert_close(out.parts["inv"], inv)
    torch.testing.assert_close(out.parts["eq/weighted"], 0.5 * out.parts["eq"])
    torch.testing.assert_close(out.loss, out.parts["inv"] + 0.5 * out.parts["eq"])
    assert {"inv/invariance", "inv/variance", "inv/covariance", "eq/prediction_cosine"} <= set(
        out.parts
    )
    out.loss.backward()
    assert heads.router.gate.weight.grad is not None
    assert objective.losses["eq"].predictor.psi.weight.grad is not None
    assert objective.inputs == {"views", "original", "params"}


@pytest.mark.parametrize("invariant", ["ntxent", "vicreg", "barlow", "byol"])
@pytest.mark.parametrize("equivariant", ["equimod", "star_eq", "augself"])
def test_any_invariant_composes_with_any_equivariant(invariant: str, equivariant: str) -> None:
    inv = {"name": invariant}
    if invariant == "byol":
        inv |= {"embed_dim": EMBED, "hidden_dim": 32}
    eq = {"name": equivariant, "weight": 2.0, "hidden_dim": 32}
    eq |= {"in_features": 32} if equivariant == "augself" else {"embed_dim": EMBED}
    objective = Objective.build({"inv": inv, "eq": eq})
    out = objective(**_step(_heads()))
    torch.testing.assert_close(out.loss, out.parts["inv"] + 2.0 * out.parts["eq"])
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_router_aux_losses_are_added() -> None:
    objective = Objective({"inv": VICRegLoss()})
    views = HeadOutput(
        embeddings={"inv": torch.randn(2, 8, EMBED)},
        gates={},
        aux_losses={"load_balance": torch.tensor(0.25), "z_loss": torch.tensor(0.5)},
    )
    original = HeadOutput({"inv": torch.randn(8, EMBED)}, {}, {"load_balance": torch.tensor(1.0)})
    out = objective(views, original=original)
    torch.testing.assert_close(out.parts["aux/load_balance"], torch.tensor(1.25))
    torch.testing.assert_close(out.parts["aux/z_loss"], torch.tensor(0.5))
    torch.testing.assert_close(out.loss, out.parts["inv"] + 1.75)


def test_topk_router_aux_losses_reach_the_total() -> None:
    heads = _heads("topk", k=2)
    objective = Objective({"inv": VICRegLoss()})
    step = _step(heads)
    out = objective(step["views"])
    aux = step["views"].aux_loss()
    assert isinstance(aux, torch.Tensor) and aux > 0
    torch.testing.assert_close(out.loss, out.parts["inv"] + aux)


def test_byol_reads_the_target_network() -> None:
    heads = _heads()
    objective = Objective.build({"inv": {"name": "byol", "embed_dim": EMBED, "hidden_dim": 32}})
    assert "targets" in objective.inputs
    target = objective.losses["inv"].make_target(heads)
    assert isinstance(target, EMA) and target.base_momentum == 0.996
    h_views = torch.randn(2, 8, 32)
    out = objective(heads(h_views), targets=target(h_views))
    out.loss.backward()
    assert all(p.grad is None for p in target.parameters())
    assert heads.router.gate.weight.grad is not None


def test_unknown_task_and_bad_spec() -> None:
    objective = Objective({"other": VICRegLoss()})
    with pytest.raises(ConfigError, match="'other' is not a head task"):
        objective(_step(_heads())["views"])
    with pytest.raises(ConfigError, match="not a TaskLoss"):
        Objective({"inv": TaskSpec(torch.nn.Linear(2, 2))})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one task"):
        Objective({})


def test_scalars_for_logging() -> None:
    out = Objective({"inv": VICRegLoss()})(_step(_heads())["views"])
    scalars = out.scalars()
    assert scalars["loss"] == pytest.approx(out.loss.item())
    assert all(isinstance(v, float) for v in scalars.values())
