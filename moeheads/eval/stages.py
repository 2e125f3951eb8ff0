"""Evaluation stages: how each protocol of :data:`~moeheads.eval.PROTOCOLS` runs on a
trained model (which data, which features), registered by the stage modules.

A stage takes an :class:`~moeheads.eval.context.EvalContext` and its validated options
(the protocol's own keyword options plus the data to use) and returns a result
``{"summary": {...}, ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moeheads.errors import ConfigError
from moeheads.eval import PROTOCOLS
from moeheads.eval.context import EvalContext, StageOptions

StageFunction = Callable[[EvalContext, Any], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """A protocol's stage: its options model and the function that runs it.

    Attributes:
        distributed: Under torchrun, every process runs it and shares the work (the others
            run on rank 0 alone).
    """

    options: type[StageOptions]
    run: StageFunction
    distributed: bool = False


#: Protocol name -> its stage (filled in by ``stages_labelled`` and ``stages_heldout``).
STAGES: dict[str, Stage] = {}


def stage(protocol: str, options: type[StageOptions], *, distributed: bool = False
          ) -> Callable[[StageFunction], StageFunction]:
    """Decorator that registers the stage of ``protocol`` (a name in ``PROTOCOLS``); see
    :class:`Stage` for ``distributed``."""

    def decorator(function: StageFunction) -> StageFunction:
        PROTOCOLS.get(protocol)  # a stage belongs to a registered protocol
        if protocol in STAGES:
            raise ConfigError(f"protocol {protocol!r} already has an evaluation stage")
        STAGES[protocol] = Stage(options, function, distributed)
        return function

    return decorator
