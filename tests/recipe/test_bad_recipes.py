"""Bad recipes are caught by ``moeheads validate``: exit 2, one message naming the field, no
traceback. Each row is a mistake a user made; the table only grows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import cli
from tests.train.recipes import tiny_recipe


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``moeheads ARGS`` in this process: (exit code, stdout + stderr)."""
    code, out, err = cli(capsys, monkeypatch, *args)
    return code, out + err


def _set(recipe: dict[str, Any], dotted: str, value: Any) -> None:
    node = recipe
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def change(**changes: Any) -> Callable[[Path], Path]:
    """A recipe file: the tiny recipe with ``a__b=value`` changes."""

    def write(tmp: Path) -> Path:
        recipe = tiny_recipe(tmp / "runs")
        for dotted, value in changes.items():
            _set(recipe, dotted.replace("__", "."), value)
        path = tmp / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        return path

    return write


def raw(data: bytes) -> Callable[[Path], Path]:
    """A recipe file holding ``data`` exactly."""

    def write(tmp: Path) -> Path:
        path = tmp / "recipe.yaml"
        path.write_bytes(data)
        return path

    return write


def text_edit(edit: Callable[[str], str]) -> Callable[[Path], Path]:
    """The tiny recipe's YAML text, edited."""

    def write(tmp: Path) -> Path:
        path = tmp / "recipe.yaml"
        path.write_text(edit(yaml.safe_dump(tiny_recipe(tmp / "runs"), sort_keys=False)))
        return path

    return write


def with_bytes(extra: bytes) -> Callable[[Path], Path]:
    """The tiny recipe with ``extra`` bytes prepended."""

    def write(tmp: Path) -> Path:
        path = tmp / "recipe.yaml"
        path.write_bytes(extra + yaml.safe_dump(tiny_recipe(tmp / "runs")).encode())
        return path

    return write


def output_dir_is_a_file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("not a directory")
    recipe = tiny_recipe(tmp / "a_file")
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def a_directory(tmp: Path) -> Path:
    (tmp / "recipes_dir").mkdir()
    return tmp / "recipes_dir"


def _duplicate_key(text: str) -> str:
    return text.replace("seed: 3\n", "seed: 3\nseed: 4\n", 1)


def _eq_without_original(tmp: Path) -> Path:
    return change(views__original=False)(tmp)


# (id, recipe writer, extra CLI args, text the message must contain)
CASES: list[tuple[str, Callable[[Path], Path], list[str], str]] = [
    ("binary file", raw(bytes(range(256)) * 4), [], "recipe.yaml"),
    ("non-UTF-8 byte", with_bytes(b"# comment \xff\n"), [], "recipe.yaml"),
    ("latin-1 byte", raw(b"name: caf\xe9\n"), [], "UTF-8"),
    ("directory as recipe", a_directory, [], "is a directory"),
    ("missing recipe", lambda tmp: tmp / "nope.yaml", [], "not found"),
    ("output_dir is a file", output_dir_is_a_file, [], "output_dir"),
    ("device tpu", change(trainer__device="tpu"), [], "trainer.device"),
    ("device cuda:x", change(trainer__device="cuda:x"), [], "trainer.device"),
    ("hidden_dim 0", change(tasks__eq__hidden_dim=0), [], "tasks.eq"),
    ("temperature 0", change(tasks__inv__temperature=0), [], "tasks.inv"),
    ("temperature negative", change(tasks__inv__temperature=-0.5), [], "tasks.inv"),
    ("lr inf", change(optimizer__lr=float("inf")), [], "optimizer.lr"),
    ("lr nan", change(optimizer__lr=float("nan")), [], "optimizer.lr"),
    ("top-k k above experts", change(heads__router={"name": "topk", "k": 5}), [],
     "heads.router"),
    ("accumulate does not divide", change(trainer__accumulate=3), [], "trainer.accumulate"),
    ("empty dataset", change(data__dataset__length=0), [], "data.dataset"),
    ("batch 1e12", change(trainer__batch_size=10**12), [], "trainer.batch_size"),
    ("batch above dataset", change(trainer__batch_size=128), [], "trainer.batch_size"),
    ("dataset of one image", change(data__dataset__length=1), [], "data.dataset"),
    ("unknown torchvision model", change(backbone={"name": "torchvision:resnet999"}), [],
     "backbone.name"),
    ("equivariant loss without original", _eq_without_original, [], "views.original"),
    ("duplicate key", text_edit(_duplicate_key), [], "seed"),
    ("epochs 1e29", change(trainer__epochs=10**29), [], "trainer.epochs"),
    ("all task weights 0", change(tasks__inv__weight=0.0, tasks__eq__weight=0.0), [],
     "tasks"),
    ("unknown --set field", change(), ["--set", "foo.bar=1"], "--set foo.bar=1"),
    ("unknown --set nested field", change(), ["--set", "trainer.colour=red"],
     "--set trainer.colour=red"),
]


@pytest.mark.parametrize(("writer", "args", "expected"),
                         [pytest.param(w, a, e, id=i) for i, w, a, e in CASES])
def test_validate_rejects_bad_recipe(writer: Callable[[Path], Path], args: list[str],
                                     expected: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = writer(tmp_path)
    code, output = run_cli(["validate", str(path), *args], capsys, monkeypatch)
    assert code == 2, output
    assert "Traceback" not in output
    assert expected in output, output


def test_the_tiny_recipe_itself_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The table's base recipe is valid, so each row fails for its own reason only."""
    code, output = run_cli(["validate", str(change()(tmp_path))], capsys, monkeypatch)
    assert code == 0, output


def test_a_directory_is_not_reported_as_missing(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run_cli(["validate", str(a_directory(tmp_path))], capsys, monkeypatch)
    assert code == 2 and "not found" not in output


def test_a_component_that_cannot_be_built_names_file_and_line(tmp_path: Path) -> None:
    """temperature: 0 passes the schema but not the loss: the error still points into the
    file, at the task's line."""
    from moeheads.api import validate
    from moeheads.errors import ConfigError

    recipe = tiny_recipe(tmp_path / "runs")
    recipe["tasks"]["inv"]["temperature"] = 0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if text.strip().startswith("inv:"))
    expected = r"bad\.yaml \(line \d+\): tasks\.inv: .*temperature"
    with pytest.raises(ConfigError, match=expected) as e:
        validate(path)
    assert f"(line {line})" in str(e.value) or f"(line {line + 1})" in str(e.value)  # its block
    with pytest.raises(ConfigError, match=r"tasks\.eq \(--set tasks\.eq\.hidden_dim=0\)"):
        validate(path, ["tasks.inv.temperature=0.2", "tasks.eq.hidden_dim=0"])


def test_device_and_name_errors_are_words(tmp_path: Path) -> None:
    from moeheads.api import resolve_recipe
    from moeheads.errors import ConfigError

    recipe = tiny_recipe(tmp_path / "runs")
    with pytest.raises(ConfigError) as error:
        resolve_recipe(recipe, ["trainer.device=gpu", "name=a b"])
    assert "must be auto, cpu, mps, cuda or cuda:N" in str(error.value)
    assert "must start with a letter or digit" in str(error.value)
    assert "pattern" not in str(error.value)
