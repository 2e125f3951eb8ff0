"""The protocol registry."""

import pytest
import torch

from moeheads.errors import ConfigError
from moeheads.eval import PROTOCOLS


def test_every_protocol_is_registered_with_keyword_options() -> None:
    assert PROTOCOLS.list() == ["cca", "detection", "equivariance", "fewshot", "knn", "linear",
                                "nn1", "routing"]
    assert PROTOCOLS.get("knn").option_names() == ["k", "temperature", "chunk_size"]
    assert PROTOCOLS.validate("fewshot", {"shots": 5}).shots == 5


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="unknown option 'neighbours'"):
        PROTOCOLS.validate("knn", {"neighbours": 3})
    with pytest.raises(ConfigError, match="did you mean 'knn'"):
        PROTOCOLS.get("kn")


def test_a_protocol_runs_from_the_registry() -> None:
    x = torch.eye(3).repeat(4, 1)
    y = torch.arange(3).repeat(4)
    options = dict(PROTOCOLS.validate("knn", {"k": 3}))
    assert PROTOCOLS.get("knn").builder(x, y, x, y, **options).top1 == 1.0


def test_every_protocol_has_one_evaluation_stage() -> None:
    from moeheads.eval.runner import STAGES

    assert sorted(STAGES) == PROTOCOLS.list()
    for name, stage in STAGES.items():
        protocol_options = set(PROTOCOLS.get(name).options.model_fields)
        assert protocol_options <= set(stage.options.model_fields)
