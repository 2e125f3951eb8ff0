"""The package's imports go one way: cli -> api -> train | eval -> assembly | rundir -> recipe
-> core, and each package imports only what its room needs.

Every ``import`` statement counts, at module level or inside a function (a lazy
import is still a dependency), ``TYPE_CHECKING`` blocks included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "moeheads"

#: Layer of a module by its name prefix (the longest match wins); anything else is core.
LAYERS = {
    "moeheads.cli": 5,
    "moeheads.__main__": 5,
    "moeheads": 4,  # the package root re-exports the API
    "moeheads.api": 4,
    "moeheads.experiments": 4,  # sweeps: many runs through the API
    "moeheads.train": 3,
    "moeheads.eval": 3,
    "moeheads.assembly": 2,  # a recipe turned into model, objective and data
    "moeheads.rundir": 2,  # files of a run directory
    "moeheads.recipe": 1,
}
CORE = 0
SIBLINGS = ("moeheads.train", "moeheads.eval")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The moeheads modules that ``name`` imports (a name imported from a package counts
    as its submodule when there is one, else as the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def layer(name: str) -> int:
    if name == "moeheads":
        return LAYERS[name]
    matches = [p for p in LAYERS if p != "moeheads" and (name == p or name.startswith(p + "."))]
    return LAYERS[max(matches, key=len)] if matches else CORE


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_walker_sees_lazy_and_relative_imports() -> None:
    edges = graph()
    assert "moeheads.train.engine" in edges["moeheads.api"]
    assert "moeheads.api" in edges["moeheads.cli"]  # imported inside the commands
    assert "moeheads.api" in edges["moeheads"]  # imported inside __getattr__
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert layer("moeheads.views.batch") == CORE and layer("moeheads.eval.knn") == 3


def test_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(("source", "target"), [SIBLINGS, SIBLINGS[::-1]])
def test_train_and_eval_do_not_import_each_other(source: str, target: str) -> None:
    arrows = [
        f"{a} -> {b}" for a, targets in graph().items() for b in sorted(targets)
        if (a == source or a.startswith(source + "."))
        and (b == target or b.startswith(target + "."))
    ]
    assert not arrows, "\n".join(arrows)


def test_no_upward_import() -> None:
    arrows = [
        f"{a} (layer {layer(a)}) -> {b} (layer {layer(b)})"
        for a, targets in graph().items() for b in sorted(targets) if layer(b) > layer(a)
    ]
    assert not arrows, "\n".join(arrows)


def arrows_from(source: str, targets: tuple[str, ...]) -> list[str]:
    """Imports from ``source`` (a module or package) into any of ``targets``."""
    def inside(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    return [
        f"{a} -> {b}" for a, found in graph().items() if inside(a, source)
        for b in sorted(found) if any(inside(b, t) for t in targets)
    ]


def test_losses_stand_alone() -> None:
    """Losses know nothing of heads (the objective that reads both lives in assembly)."""
    assert not arrows_from("moeheads.losses", ("moeheads.heads", "moeheads.routers",
                                               "moeheads.assembly")), "losses import heads"


def test_run_directory_knows_only_files() -> None:
    forbidden = ("moeheads.losses", "moeheads.data", "moeheads.views", "moeheads.backbones",
                 "moeheads.heads", "moeheads.routers", "moeheads.assembly")
    arrows = arrows_from("moeheads.rundir", forbidden)
    assert not arrows, "\n".join(arrows)


#: What the command line may import: the public API and light helpers.
CLI_MAY_IMPORT = {
    "moeheads._version", "moeheads.errors", "moeheads.api", "moeheads.registry",
    "moeheads.experiments", "moeheads.experiments.sweep", "moeheads.recipe.catalog",
    "moeheads.recipe.io", "moeheads.runtime.allocator", "moeheads.runtime.slurm",
}


def test_cli_speaks_only_to_the_api() -> None:
    extra = graph()["moeheads.cli"] - CLI_MAY_IMPORT
    assert not extra, f"moeheads.cli imports {sorted(extra)}"


PUBLIC_FACE = {"__init__.py", "__main__.py", "api.py", "cli.py", "registry.py", "errors.py",
               "_version.py", "_lazy.py", "py.typed"}


def test_package_root_holds_the_public_face_and_folders() -> None:
    loose = sorted(p.name for p in PACKAGE.iterdir()
                   if p.is_file() and p.name not in PUBLIC_FACE)
    assert not loose, f"loose files at the package root: {loose}"
