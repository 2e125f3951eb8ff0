"""Evaluation protocols: kNN, linear probe, few-shot, CCA, equivariance, routing, detection.

Every protocol is a function of tensors (data as positional arguments, options as
keyword-only arguments with the paper's defaults), registered in :data:`PROTOCOLS`
with a pydantic model of its keyword options, so a recipe can validate them. This is
the one table of protocols: each evaluation stage (:mod:`moeheads.eval.stages`) is
registered for a protocol named here.

Example:
    >>> from moeheads.eval import PROTOCOLS
    >>> PROTOCOLS.list()
    ['cca', 'detection', 'equivariance', 'fewshot', 'knn', 'linear', 'nn1', 'routing']
    >>> options = PROTOCOLS.validate("knn", {"k": 20})
    >>> run = PROTOCOLS.get("knn").builder  # run(train_x, train_y, test_x, test_y, **dict(options))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moeheads.eval.detection.protocol import DetectionResult, detection_transfer
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
from moeheads.numerics.redundancy import Redundancy, redundancy
from moeheads.registry import Registry, options_from_signature

PROTOCOLS: Registry[Callable[..., Any]] = Registry("protocol")


for _name, _function in {
    "knn": knn_classify,
    "nn1": nn1_accuracy,
    "linear": linear_probe,
    "fewshot": fewshot_eval,
    "cca": redundancy,
    "detection": detection_transfer,
    "equivariance": view_param_r2,
    "routing": expert_usage,
}.items():
    PROTOCOLS.register(
        _name, options=options_from_signature(_function, f"{_name}_options", keyword_only=True)
    )(_function)

__all__ = [
    "PROTOCOLS",
    "VIEW_PARAM_NAMES",
    "CCAResult",
    "DetectionResult",
    "Episodes",
    "EquivarianceResult",
    "EvalTransform",
    "ExpertUsage",
    "FeatureSet",
    "FewShotResult",
    "KNNResult",
    "LinearProbeResult",
    "LogisticModel",
    "Redundancy",
    "accuracy",
    "cca",
    "class_probe_accuracy",
    "detection_transfer",
    "expert_roles",
    "expert_task_cca",
    "expert_usage",
    "extract_features",
    "factor_r2",
    "fewshot_eval",
    "fit_logistic",
    "knn_classify",
    "knn_scores",
    "l2_grid",
    "linear_probe",
    "nn1_accuracy",
    "pairwise_expert_cca",
    "plot_expert_usage",
    "redundancy",
    "sample_episodes",
    "view_param_r2",
]
