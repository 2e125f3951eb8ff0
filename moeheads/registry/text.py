"""Docstrings as plain one-line descriptions (``moeheads list``)."""

from __future__ import annotations

import inspect
import re


def first_line(doc: str | None) -> str:
    """The first line of a docstring as plain text, without its final full stop."""
    return plain_text(inspect.cleandoc(doc).splitlines()[0].rstrip(".")) if doc else ""


_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")  # :class:`~a.b.C` -> C, :func:`f` -> f
_MARKUP = (
    (re.compile(r"\[`?([^\]`]+)`?\]\[[^\]]*\]"), r"\1"),  # [`C`][a.b.C] -> C
    (re.compile(r"``([^`]+)``"), r"\1"),  # ``depth`` -> depth
    (re.compile(r"`([^`]+)`"), r"\1"),
)


def plain_text(text: str) -> str:
    """Docstring markup (reST literals, Sphinx roles, Markdown code and references) removed.

    Example:
        >>> plain_text("A CNN: ``depth`` stages of :class:`~torch.nn.Conv2d`")
        'A CNN: depth stages of Conv2d'
    """
    text = _ROLE.sub(lambda m: m.group(2).rpartition(".")[2] if m.group(1) else m.group(2), text)
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text
