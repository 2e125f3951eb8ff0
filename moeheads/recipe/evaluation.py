"""The recipe's ``evaluation`` section: the stages run after pretraining."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class EvaluationStage(BaseModel):
    """An evaluation run after pretraining: ``protocol`` plus its options."""

    model_config = ConfigDict(extra="allow")

    protocol: str

    @property
    def options(self) -> dict[str, Any]:
        """Every key except ``protocol``."""
        return dict(self.model_extra or {})
