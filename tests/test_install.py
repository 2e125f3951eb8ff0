"""moeheads installs with pip and runs its shipped recipes by name, outside the clone."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moeheads.cli import app
from moeheads.errors import ConfigError
from moeheads.recipe.catalog import (
    RECIPES_DIR,
    SWEEPS_DIR,
    resolve_recipe_path,
    shipped_recipes,
    shipped_sweeps,
)

ROOT = Path(__file__).parents[1]


def test_the_package_recipes_are_the_top_level_recipes() -> None:
    assert RECIPES_DIR.resolve() == (ROOT / "recipes").resolve()
    assert set(shipped_recipes()) == {p.stem for p in (ROOT / "recipes").glob("*.yaml")}
    assert "quickstart" in shipped_recipes()


def test_names_resolve_and_paths_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_recipe_path("quickstart") == RECIPES_DIR / "quickstart.yaml"
    assert resolve_recipe_path("quickstart.yaml") == RECIPES_DIR / "quickstart.yaml"
    (tmp_path / "quickstart.yaml").write_text("name: mine\n")
    assert resolve_recipe_path("quickstart.yaml") == Path("quickstart.yaml")
    with pytest.raises(ConfigError, match=r"not found: elsewhere/quickstart.yaml"):
        resolve_recipe_path("elsewhere/quickstart.yaml")
    with pytest.raises(ConfigError, match=r"no shipped recipe of that name; shipped: .*quickstart"):
        resolve_recipe_path("quickstrt")


def test_sweep_names_and_documented_paths_fall_back_to_the_shipped_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no recipes/ folder here, as after pip install
    notes: list[str] = []
    sweep = SWEEPS_DIR / "paper_experts_stl10.yaml"
    assert resolve_recipe_path("paper_experts_stl10", sweep=True, note=notes.append) == sweep
    assert resolve_recipe_path("quickstart", sweep=True) == RECIPES_DIR / "quickstart.yaml"
    assert not notes  # a bare name is no fallback
    documented = "recipes/sweeps/paper_experts_stl10.yaml"
    assert resolve_recipe_path(documented, sweep=True, note=notes.append) == sweep
    assert resolve_recipe_path("recipes/star_stl10.yaml", note=notes.append) == (
        RECIPES_DIR / "star_stl10.yaml")
    assert notes == [f"note: {documented} is not here; using the shipped sweep "
                     f"paper_experts_stl10 ({sweep})",
                     "note: recipes/star_stl10.yaml is not here; using the shipped recipe "
                     f"star_stl10 ({RECIPES_DIR / 'star_stl10.yaml'})"]
    with pytest.raises(ConfigError, match=r"a shipped sweep.*moeheads sweep paper_experts_stl10"):
        resolve_recipe_path("paper_experts_stl10")
    with pytest.raises(ConfigError, match="sweeps: paper_experts_stl10"):
        resolve_recipe_path("recipes/sweeps/quickstart.yaml", sweep=True)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "quickstart.yaml").write_text("name: mine\n")
    assert resolve_recipe_path("recipes/quickstart.yaml") == Path("recipes/quickstart.yaml")


def test_recipes_command_lists_each_with_a_description() -> None:
    result = CliRunner().invoke(app, ["recipes"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
    assert set(rows) == set(shipped_recipes()) | set(shipped_sweeps())
    assert "synthetic_shapes data" in rows["quickstart"]
    assert rows["quickstart"].split()[1] == "recipe"
    assert "sweep (12 runs)" in rows["paper_experts_stl10"]
    assert "sweep (24 runs)" in rows["study_fashion_mnist"]
    assert all(len(line.split()) > 3 for line in rows.values())


def test_pip_install_into_a_fresh_venv_runs_quickstart(tmp_path: Path) -> None:
    """Builds the wheel, installs it (no dependencies: they come from this environment
    through a .pth file) into a new virtualenv, and runs the CLI outside the clone."""
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-w", str(wheels)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("moeheads-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = subprocess.run([str(python), "-c", purelib], check=True, capture_output=True,
                          text=True).stdout.strip()
    (Path(site) / "parent_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--ignore-installed",
                    str(wheel)], check=True)  # even where an editable moeheads is visible
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["COLUMNS"] = "200"

    def moeheads(*args: str) -> str:
        done = subprocess.run([str(venv / "bin" / "moeheads"), *args], cwd=work, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = subprocess.run([str(python), "-c", "import moeheads; print(moeheads.__file__)"],
                           cwd=work, env=env, check=True, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(venv))
    assert "quickstart" in moeheads("recipes")
    assert "name: quickstart" in moeheads("validate", "quickstart")
    out = moeheads("run", "quickstart", "--set", "trainer.epochs=1",
                   "--set", "trainer.steps_per_epoch=2", "--set", "data.dataset.length=512",
                   "--set", "monitor.knn_every=0", "--set", "monitor.cca_every=0",
                   "--set", "trainer.device=cpu")
    assert "run finished" in out
    assert (work / "runs" / "quickstart" / "backbone.safetensors").is_file()
    listed = moeheads("recipes")
    assert "paper_experts_stl10" in listed and "sweep (12 runs)" in listed
    planned = moeheads("sweep", "paper_experts_stl10", "--dry-run")
    assert "12 runs in runs/paper_experts_stl10 (0 done)" in planned
    assert "num_experts-16-seed2" in planned
    documented = subprocess.run(
        [str(venv / "bin" / "moeheads"), "validate", "recipes/star_stl10.yaml"], cwd=work,
        env=env, capture_output=True, text=True)
    assert documented.returncode == 0 and "name: star_stl10" in documented.stdout
    assert "using the shipped recipe star_stl10" in documented.stderr
