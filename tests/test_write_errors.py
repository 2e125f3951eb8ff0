"""A full disk or file-size limit: every writer (checkpoint, metrics, evaluation cache and
result, export, report) ends with one line naming the file, exit status 2, nothing lost."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from moeheads.errors import WriteError, writing
from tests.train.recipes import tiny_recipe, write_recipe

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE")


def moeheads(*args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    """``moeheads ARGS`` in a subprocess whose files may grow to ``limit`` bytes at most."""
    def lower() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "moeheads.cli", *args], capture_output=True,
                          text=True, timeout=300, preexec_fn=lower,
                          cwd=Path(__file__).parents[1])


def test_writing_names_the_file_and_the_reason(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    message = r"could not write a test file .*x.bin: no space left"
    with pytest.raises(WriteError, match=message), writing(target, "a test file"):
        raise OSError(28, "No space left on device")
    with pytest.raises(WriteError, match="the file-size limit was reached"), writing(target):
        raise RuntimeError("Error while serializing: IoError(File too large (os error 27))")
    with pytest.raises(KeyError), writing(target):  # not a write failure: left alone
        raise KeyError("k")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("limits")
    recipe = write_recipe(root / "tiny.yaml", tiny_recipe(
        root / "runs", trainer__epochs=1, monitor__knn_every=0, monitor__cca_every=0))
    done = moeheads("run", str(recipe))
    assert done.returncode == 0, done.stderr
    return root / "runs" / "tiny"


def one_line(done: subprocess.CompletedProcess, names: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and names in errors[0], done.stderr[-2000:]


def test_checkpoint_past_the_limit(trained: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(
        tmp_path / "runs", trainer__epochs=1, monitor__knn_every=0, monitor__cca_every=0))
    done = moeheads("run", str(recipe), limit=20_000)
    one_line(done, "could not write checkpoint")
    assert "file-size limit" in done.stderr
    checkpoints = tmp_path / "runs" / "tiny" / "checkpoints"
    assert not checkpoints.exists() or list(checkpoints.iterdir()) == []  # no partial files


def test_export_past_the_limit(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "backbone.safetensors"
    done = moeheads("export", str(trained), str(out), limit=2_000)
    one_line(done, f"could not write backbone export {out}")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_evaluation_cache_past_the_limit(trained: Path) -> None:
    before = sorted(p.name for p in trained.rglob("*") if p.is_file())
    done = moeheads("eval", str(trained), "--protocol", "knn", "--set", "k=5", limit=1_000)
    one_line(done, "could not write feature cache")
    assert sorted(p.name for p in trained.rglob("*") if p.is_file()) == before


def test_report_past_the_limit(trained: Path) -> None:
    report = (trained / "report.md").read_text()
    done = moeheads("report", str(trained), limit=300)
    one_line(done, "could not write report")
    assert (trained / "report.md").read_text() == report
