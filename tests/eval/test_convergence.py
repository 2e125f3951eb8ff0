"""Head convergence from logged steps: steps to a share of the loss's decrease, by hand."""

from moeheads.eval.convergence import smooth, steps_to, task_curves


def test_steps_to_a_share_of_the_decrease_by_hand() -> None:
    steps, loss = [1, 2, 3, 4, 5, 6], [10.0, 6.0, 3.0, 2.0, 1.5, 1.0]
    # decrease 9: 95% is reached below 1.45 (step 6), 50% below 5.5 (step 3)
    assert steps_to(steps, loss, 0.95, window=1) == 6
    assert steps_to(steps, loss, 0.5, window=1) == 3


def test_the_loss_must_stay_below_the_mark() -> None:
    # 50% of the decrease (5.5) is first reached at step 2, but step 3 climbs back
    assert steps_to([1, 2, 3, 4], [10.0, 2.0, 9.0, 1.0], 0.5, window=1) == 4
    assert steps_to([1, 2, 3], [1.0, 2.0, 3.0]) is None  # no decrease
    assert steps_to([1], [1.0]) is None


def test_smoothing_is_a_trailing_mean() -> None:
    assert smooth([10.0, 6.0, 3.0, 1.0], 2) == [10.0, 8.0, 4.5, 2.0]


def test_curves_from_step_records() -> None:
    records = [{"kind": "step", "step": 2, "inv": 3.0, "inv/grad_norm": 0.5},
               {"kind": "epoch", "step": 2, "inv": 3.0},
               {"kind": "step", "step": 4, "inv": 2.0}]
    curve = task_curves(records, ["inv", "eq"])
    assert list(curve) == ["inv"]
    assert (curve["inv"].steps, curve["inv"].loss, curve["inv"].grad_norm) == (
        [2, 4], [3.0, 2.0], [0.5, None])
