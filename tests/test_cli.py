import subprocess
import sys

from typer.testing import CliRunner

from moeheads import __version__
from moeheads.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_list_routers_has_all_five_with_descriptions() -> None:
    result = runner.invoke(app, ["list", "routers"])
    assert result.exit_code == 0
    for name in ("hard", "shared", "topk", "mmoe", "star"):
        assert name in result.output
    assert "Multi-gate" in result.output


def test_list_with_pattern() -> None:
    result = runner.invoke(app, ["list", "routers", "s*"])
    assert "star" in result.output and "shared" in result.output and "topk" not in result.output


def test_list_backbones() -> None:
    result = runner.invoke(app, ["list", "backbones"])
    assert result.exit_code == 0 and "torchvision" in result.output


def test_unknown_kind_is_one_line_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "moeheads.cli", "list", "widgets"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown component kind 'widgets'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_descriptions_are_plain_text() -> None:
    result = runner.invoke(app, ["list", "backbones"])
    assert "depth conv-BN-ReLU" in result.output
    assert "``" not in result.output and ":class:" not in result.output
