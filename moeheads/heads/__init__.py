"""The heads: a bank of expert MLPs mixed per task by a router.

- :mod:`~moeheads.heads.bank`: :class:`ExpertBank`, N experts in one batched computation
  (its two memory layouts in :mod:`~moeheads.heads.bank_layouts`, copies to and from
  plain ``nn.Sequential`` experts in :mod:`~moeheads.heads.expert_copies`);
- :mod:`~moeheads.heads.mixture`: :class:`MoEHeads`, the experts mixed per task, and
  :class:`TaskHead`, one task as a plain tensor-returning head;
- :mod:`~moeheads.heads.output`: :class:`HeadOutput`, what the heads return;
- :mod:`~moeheads.heads.routing_stats`: how the gates use the experts.

The routers that produce the gates live beside this package, in :mod:`moeheads.routers`.
"""

from moeheads.heads.activations import ACTIVATIONS, Activation
from moeheads.heads.bank import ExpertBank
from moeheads.heads.mixture import MoEHeads, TaskHead
from moeheads.heads.output import HeadOutput, stack_gates, stack_head_outputs
from moeheads.heads.routing_stats import RoutingStats, max_entropy, routing_stats

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "ExpertBank",
    "HeadOutput",
    "MoEHeads",
    "RoutingStats",
    "TaskHead",
    "max_entropy",
    "routing_stats",
    "stack_gates",
    "stack_head_outputs",
]
