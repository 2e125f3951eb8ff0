"""A generic registry of named components (routers, losses, backbones, datasets).

Each registered component is a class or factory function plus a pydantic model
of its options. The options model is taken, in this order, from the
``options=`` argument of :meth:`Registry.register`, from a nested ``Options``
class, or derived from the call signature (type hints and defaults). Unknown
options are errors, so Python calls and YAML recipes are validated by the same
model.

Example:
    >>> from moeheads.registry import Registry
    >>> activations = Registry("activation")
    >>> @activations.register("scaled_relu")
    ... class ScaledReLU:
    ...     '''ReLU times a constant.'''
    ...     def __init__(self, scale: float = 2.0):
    ...         self.scale = scale
    >>> activations.create("scaled_relu", scale=3).scale
    3.0
    >>> activations.list("scaled*")
    ['scaled_relu']

The pieces: :mod:`~moeheads.registry.base` (:class:`Registry`), :mod:`~moeheads.registry.kinds`
(the kinds a recipe names, :func:`registry_for`), :mod:`~moeheads.registry.plugins`,
:mod:`~moeheads.registry.options` (options models from signatures, their errors) and
:mod:`~moeheads.registry.text` (one-line descriptions).
"""

from moeheads.registry.base import Entry, Registry
from moeheads.registry.kinds import COMPONENT_KINDS, registry_for
from moeheads.registry.options import describe_validation_error, options_from_signature
from moeheads.registry.plugins import PLUGIN_GROUP, load_plugins
from moeheads.registry.text import plain_text

__all__ = [
    "COMPONENT_KINDS",
    "PLUGIN_GROUP",
    "Entry",
    "Registry",
    "describe_validation_error",
    "load_plugins",
    "options_from_signature",
    "plain_text",
    "registry_for",
]
