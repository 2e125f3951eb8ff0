"""A griffe extension: docstrings written with Sphinx habits render as Markdown.

- ``Example:`` (an admonition title to griffe) becomes an ``Examples:`` section, so
  ``>>>`` lines render as code blocks;
- Sphinx roles (``:class:`Name```, ``:func:`~pkg.mod.name```, ``:meth:``, ``:mod:``,
  ``:attr:``, ``:data:``, ``:exc:``) become mkdocstrings cross-references
  (``[`Name`][pkg.mod.Name]``), resolved from the object's scope outwards, then by a
  unique name in the package; a name that resolves to nothing documented (e.g. a
  torch class) stays inline code.

Registered in ``mkdocs.yml`` under the python handler's ``extensions``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")
EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class SphinxDocstrings(griffe.Extension):
    """Rewrites every docstring of the package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        objects = list(_walk(pkg))
        by_name: dict[str, list[griffe.Object]] = defaultdict(list)
        for obj in objects:
            if _documented(obj):
                by_name[obj.name].append(obj)
        for obj in objects:
            if obj.docstring is None:
                continue
            text = EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = ROLE.sub(
                lambda m, scope=obj: _link(pkg, scope, m, by_name), text
            )


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


def _documented(obj: griffe.Object) -> bool:
    """Whether the reference pages render ``obj`` with an anchor."""
    parts = obj.path.split(".")
    if any(p.startswith("_") and p != "__init__" for p in parts[1:]):
        return False
    return obj.is_module or obj.docstring is not None


def _lookup(scope: griffe.Object, dotted: str) -> griffe.Object | None:
    try:
        found = scope[dotted]
    except (KeyError, griffe.AliasResolutionError, ValueError, IndexError):
        return None
    if found.is_alias:
        try:
            return found.final_target
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    return found


def _resolve(pkg: griffe.Module, obj: griffe.Object, target: str,
             by_name: dict[str, list[griffe.Object]]) -> griffe.Object | None:
    if target == pkg.name or target.startswith(pkg.name + "."):
        return pkg if target == pkg.name else _lookup(pkg, target.removeprefix(pkg.name + "."))
    scope: griffe.Object | None = obj
    while scope is not None:
        found = _lookup(scope, target)
        if found is not None:
            return found
        scope = scope.parent
    candidates = by_name.get(target.split(".")[-1], [])
    if len(candidates) == 1 and candidates[0].path.endswith(target):
        return candidates[0]
    return None


def _link(pkg: griffe.Module, obj: griffe.Object, match: re.Match[str],
          by_name: dict[str, list[griffe.Object]]) -> str:
    short, target = match.group(1), match.group(2).strip()
    text = target.split(".")[-1] if short else target
    found = _resolve(pkg, obj, target, by_name)
    while found is not None and not _documented(found):
        found = found.parent if not found.is_module else None
    if found is None or not found.path.startswith(pkg.name):
        return f"`{text}`"
    return f"[`{text}`][{found.path}]"
