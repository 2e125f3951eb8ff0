"""Evaluation protocols on frozen features: kNN, linear probe, few-shot, CCA, equivariance, routing.

Every protocol is a function of tensors (data as positional arguments, options as
keyword-only arguments with the paper's defaults), registered in :data:`PROTOCOLS`
with a pydantic model of its keyword options, so a recipe can validate them:

Example:
    >>> from moeheads.eval import PROTOCOLS
    >>> PROTOCOLS.list()
    ['cca', 'equivariance', 'fewshot', 'knn', 'linear', 'nn1', 'routing']
    >>> options = PROTOCOLS.validate("knn", {"k": 20})
    >>> run = PROTOCOLS.get("knn").builder  # run(train_x, train_y, test_x, test_y, **dict(options))
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from moeheads.eval.equivariance import (
    VIEW_PARAM_NAMES,
    EquivarianceResult,
    class_probe_accuracy,
    factor_r2,
    view_param_r2,
)
from moeheads.eval.fewshot import Episodes, FewShotResult, fewshot_eval, sample_episodes
from moeheads.eval.linear import LinearProbeResult, l2_grid, linear_probe
from moeheads.eval.logistic import LogisticModel, accuracy, fit_logistic
from moeheads.eval.routing import ExpertUsage, expert_roles, expert_usage, plot_expert_usage
from moeheads.numerics.cca import CCAResult, cca, expert_task_cca, pairwise_expert_cca
from moeheads.numerics.features import EvalTransform, FeatureSet, extract_features
from moeheads.numerics.knn import KNNResult, knn_classify, knn_scores, nn1_accuracy
from moeheads.registry import Registry

PROTOCOLS: Registry[Callable[..., Any]] = Registry("protocol")


def keyword_options(function: Callable[..., Any], name: str) -> type[BaseModel]:
    """A pydantic model (``extra="forbid"``) of ``function``'s keyword-only arguments."""
    hints = typing.get_type_hints(function)
    fields: dict[str, Any] = {
        p.name: (hints.get(p.name, Any), p.default)
        for p in inspect.signature(function).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    return create_model(f"{name}_options", __config__=config, **fields)


for _name, _function in {
    "knn": knn_classify,
    "nn1": nn1_accuracy,
    "linear": linear_probe,
    "fewshot": fewshot_eval,
    "cca": cca,
    "equivariance": view_param_r2,
    "routing": expert_usage,
}.items():
    PROTOCOLS.register(_name, options=keyword_options(_function, _name))(_function)

__all__ = [
    "PROTOCOLS",
    "VIEW_PARAM_NAMES",
    "CCAResult",
    "Episodes",
    "EquivarianceResult",
    "EvalTransform",
    "ExpertUsage",
    "FeatureSet",
    "FewShotResult",
    "KNNResult",
    "LinearProbeResult",
    "LogisticModel",
    "accuracy",
    "cca",
    "class_probe_accuracy",
    "expert_roles",
    "expert_task_cca",
    "expert_usage",
    "extract_features",
    "factor_r2",
    "fewshot_eval",
    "fit_logistic",
    "keyword_options",
    "knn_classify",
    "knn_scores",
    "l2_grid",
    "linear_probe",
    "nn1_accuracy",
    "pairwise_expert_cca",
    "plot_expert_usage",
    "sample_episodes",
    "view_param_r2",
]
