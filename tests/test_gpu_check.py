"""``benchmarks/gpu_check.py``: its CPU-safe parts run at tiny sizes and fill the table."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def _run(out: Path, *parts: str) -> str:
    only = ["--only", *parts] if parts else []
    subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out",
                    str(out), *only], cwd=ROOT, check=True, capture_output=True, text=True,
                   timeout=300)
    return (out / "summary.md").read_text()


def test_quick_cpu_run_writes_the_summary(tmp_path: Path) -> None:
    summary = _run(tmp_path, "throughput-device", "jpeg")
    assert summary.startswith("## gpu-check on cpu (cpu, quick)")
    assert "| input pipeline alone (device pipeline) |" in summary
    assert "| training step (device, fp32+cl) |" in summary
    assert "JPEG decode: device vs CPU decoder | max 0, mean 0.000" in summary
    assert "failed (" not in summary and "timed out" not in summary
    assert (tmp_path / "results.json").is_file() and (tmp_path / "logs").is_dir()


@pytest.mark.slow
def test_quick_cpu_run_of_every_part(tmp_path: Path) -> None:
    summary = _run(tmp_path)
    assert "| gpu tests | 4 passed, 0 failed, 0 skipped | all pass | ok |" in summary
    assert "failed (" not in summary and "timed out" not in summary


def test_a_failing_part_is_reported_and_the_others_kept() -> None:
    gpu_check = _module()
    parts = {
        "tests": gpu_check.Part("tests", [], 1, status="failed (exit 1)", figures={
            "tests": 5, "failures": 1, "errors": 0, "skipped": 0, "failed": ["test_x"]}),
        "throughput-device": gpu_check.Part("throughput-device", [], 1, status="ok", figures={
            "workers": 0, "input_images_per_s": 9000.0,
            "rows": [{"config": "bf16+cl", "images_per_s": 3000.0, "hours_200_epochs": 1.9437},
                     {"config": "bf16+cl+compile", "error": "RuntimeError: boom"}]}),
        "heads": gpu_check.Part("heads", [], 1, status="timed out after 60 s"),
    }
    rows = gpu_check.summary_rows(parts, 256)
    table = gpu_check.markdown(rows, "## test")
    assert "| gpu tests | 4 passed, 1 failed, 0 skipped (test_x) | all pass | failed (exit 1) |" \
        in table
    assert "9,000 images/s 3.0x the best step rate" in table
    assert "| training step (device, bf16+cl+compile) | RuntimeError: boom |  | failed |" in table
    assert "expert bank vs per-expert loop (eager) | n/a | >= 3x | timed out after 60 s" in table
    # 200 epochs x 104,960 images at 3,000 images/s
    assert "projected 200 STL-10 epochs (star_stl10: device views, bf16, channels_last) | " \
           "117 min | < 60 min (aim 30) | misses target |" in table
