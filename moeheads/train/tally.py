"""One epoch's running sums: the step scalars and gates behind the epoch
summary, saved with a mid-epoch checkpoint so that a resumed epoch's summary is the one
an uninterrupted epoch would have written."""

from __future__ import annotations

from typing import Any

from moeheads.train.monitor import GateBuffer


class EpochTally:
    """Sums of an epoch's step scalars, and its recent gates.

    Args:
        gates: The buffer of recent gates (routing statistics of the epoch).

    Example:
        >>> tally = EpochTally(GateBuffer())
        >>> tally.add({"loss": 1.0})
        >>> tally.add({"loss": 3.0})
        >>> tally.means()
        {'loss': 2.0}
    """

    def __init__(self, gates: GateBuffer) -> None:
        self.gates = gates
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, scalars: dict[str, float]) -> None:
        """Count one optimiser step's scalars."""
        for name, value in scalars.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def means(self) -> dict[str, float]:
        """Each scalar's mean over the epoch's steps so far."""
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}

    def clear(self) -> None:
        """Start a new epoch."""
        self.sums, self.count = {}, 0
        self.gates.clear()

    def state_dict(self) -> dict[str, Any]:
        """Plain data (weights-only loadable) to resume the epoch's summary from."""
        return {"sums": dict(self.sums), "count": self.count, "gates": self.gates.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the sums of :meth:`state_dict`."""
        self.sums = {k: float(v) for k, v in state["sums"].items()}
        self.count = int(state["count"])
        self.gates.load_state_dict(state["gates"])
