"""A recipe's ``imports:`` makes components from the user's own files and modules nameable."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import moeheads
from moeheads.errors import ConfigError
from moeheads.routers import ROUTERS
from tests.train.recipes import tiny_recipe, write_recipe

ROUTER_FILE = '''
import torch
from moeheads.routers import ROUTERS, Router, RouterOutput


@ROUTERS.register("{name}")
class UniformRouter(Router):
    """Equal gates over every expert."""

    def __init__(self, in_features, num_experts, tasks, scale: float = 1.0):
        super().__init__(in_features, num_experts, tasks)
        self.scale = torch.nn.Parameter(torch.tensor(scale))

    def route(self, h):
        gates = torch.full((self.num_tasks, h.shape[0], self.num_experts), 1 / self.num_experts)
        return RouterOutput(gates * self.scale / self.scale.detach(), {{}})
'''


@pytest.fixture
def router_file(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"uniform_{tmp_path.name.replace('-', '_')}"
    path = tmp_path / "my_router.py"
    path.write_text(textwrap.dedent(ROUTER_FILE.format(name=name)))
    yield path, name
    ROUTERS.unregister(name)
    for module in [m for m in sys.modules if m.startswith("moeheads_user_my_router_")]:
        del sys.modules[module]


def test_validate_and_run_with_a_router_from_a_file(tmp_path: Path,
                                                    router_file: tuple[Path, str]) -> None:
    path, name = router_file
    recipe = tiny_recipe(tmp_path / "runs", imports=[str(path)],
                         heads__router={"name": name, "scale": 2.0},
                         trainer__epochs=1, monitor__knn_every=0, monitor__cca_every=0)
    recipe_path = write_recipe(tmp_path / "recipe.yaml", recipe)
    resolved = moeheads.validate(recipe_path)
    assert resolved.heads.router.name == name and resolved.heads.router.options == {"scale": 2.0}
    results = moeheads.run(recipe_path)
    assert results.epochs == 1
    saved = yaml.safe_load((results.run_dir / "recipe.yaml").read_text())
    assert saved["imports"] == [str(path)]


def test_a_module_on_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           router_file: tuple[Path, str]) -> None:
    path, name = router_file
    package = tmp_path / "my_lab"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "routers.py").write_text(path.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        recipe = tiny_recipe(tmp_path / "runs", imports=["my_lab.routers"],
                             heads__router={"name": name})
        assert moeheads.validate(recipe).heads.router.name == name
    finally:
        sys.modules.pop("my_lab.routers", None)
        sys.modules.pop("my_lab", None)


def test_a_component_without_its_import_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown router 'not_imported'"):
        moeheads.validate(tiny_recipe(tmp_path, heads__router={"name": "not_imported"}))


@pytest.mark.parametrize(("entry", "message"), [
    ("no_such_lab.routers", "imports: cannot import 'no_such_lab.routers'"),
    ("missing/router.py", "imports: file not found"),
])
def test_bad_imports_name_the_entry(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        moeheads.validate(tiny_recipe(tmp_path, imports=[entry]))


def test_a_failing_file_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match=r"importing .*broken.py' failed: RuntimeError: boom"):
        moeheads.validate(tiny_recipe(tmp_path, imports=[str(broken)]))


def test_imports_leave_the_hash_of_other_recipes_alone(tmp_path: Path) -> None:
    recipe = moeheads.validate(tiny_recipe(tmp_path))
    assert "imports" not in recipe.model_dump(exclude_defaults=True)
    assert recipe.hash() == moeheads.validate(tiny_recipe(tmp_path, imports=[])).hash()
