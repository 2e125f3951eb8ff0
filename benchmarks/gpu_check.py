"""Everything that needs a GPU, in one run: tests, throughput, heads, JPEG decoding.

The first thing to run on a machine with a GPU (``make gpu-check``). Each part runs in
its own process with its own time limit, so one failing or hanging part is reported
in the table and the others still give their figures:

- ``tests``: the ``gpu``-marked tests (device views equal the CPU workers', nvJPEG,
  bf16 + channels_last + compile against eager, grouped BatchNorm with cuDNN);
- ``throughput-device`` / ``throughput-workers``: ``benchmarks/gpu_throughput.py``
  with each input pipeline (fp32, bf16, channels_last, compile on and off);
- ``heads``: ``benchmarks/heads.py`` (batched expert bank against a per-expert loop);
- ``jpeg``: batched JPEG decoding on the device, and decoding + views at 224 px.

It prints one summary table, with the projected wall time of 200 STL-10 epochs, and
writes it as ``summary.md`` (plus ``results.json`` and each part's log) under
``--out``. ``--device cpu --quick`` runs the CPU-safe parts at tiny sizes (a smoke
test of the script itself; its figures mean nothing). Run:

    make gpu-check                                   # = .venv/bin/python benchmarks/gpu_check.py
    .venv/bin/python benchmarks/gpu_check.py --out runs/gpu-check --budget 460
    .venv/bin/python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu-check
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, STL10_IMAGES = 200, 105_000


@dataclass
class Part:
    """One part of the check: a command, its time limit and what it reported."""

    name: str
    command: list[str]
    limit: float
    env: dict[str, str] = field(default_factory=dict)
    status: str = "not run"
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)


def run_part(part: Part, out: Path) -> None:
    """Run ``part`` as a subprocess; record status, time and (from its JSON) figures."""
    log = out / "logs" / f"{part.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, **part.env}
    print(f"--- {part.name}: {' '.join(part.command)} (limit {part.limit:.0f} s)", flush=True)
    tic = time.perf_counter()
    with log.open("w") as sink:
        try:
            proc = subprocess.run(part.command, cwd=ROOT, env=env, stdout=sink,
                                  stderr=subprocess.STDOUT, timeout=part.limit)
            part.status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            part.status = f"timed out after {part.limit:.0f} s"  # figures so far are kept
        except OSError as error:
            part.status = f"failed to start: {error}"
    part.seconds = time.perf_counter() - tic
    result = out / f"{part.name}.json"
    if result.is_file():
        try:
            part.figures = json.loads(result.read_text())
        except json.JSONDecodeError:
            part.status += ", unreadable figures"
    print(f"    {part.status} in {part.seconds:.0f} s (log: {log})", flush=True)


def pytest_figures(junit: Path) -> dict[str, Any]:
    """Counts of a pytest run from its JUnit XML."""
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = [case.get("name", "?") for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    return {**counts, "failed": failed}


def jpeg_part(device: str, count: int, height: int, width: int, size: int, repeats: int,
              json_path: Path) -> None:
    """Decode rate of ``count`` JPEGs (batched, on ``device``) and decode + views rate."""
    import numpy as np
    import torch
    from PIL import Image

    from moeheads.views import DeviceViews, ViewSampler
    from moeheads.views.jpeg import decode_images

    rng = np.random.default_rng(0)
    files = []
    for _ in range(min(count, 32)):  # smooth random images, JPEG-encoded like photos
        base = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(base).resize((width, height), Image.BICUBIC).save(
            buffer, format="JPEG", quality=90)
        files.append(buffer.getvalue())
    data = [torch.frombuffer(bytearray(files[i % len(files)]), dtype=torch.uint8)
            for i in range(count)]
    target = torch.device(device)

    def sync() -> None:
        if target.type == "cuda":
            torch.cuda.synchronize(target)

    def rate(fn) -> float:
        fn()
        sync()
        tic = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        return count * repeats / (time.perf_counter() - tic)

    decode = rate(lambda: decode_images(data, target))
    views = DeviceViews(ViewSampler(size=size), num_views=2, original=True, seed=0)
    indices = list(range(count))
    with_views = rate(lambda: views(decode_images(data, target), indices))
    on_device = decode_images(data[:4], target)
    on_cpu = decode_images(data[:4], "cpu")
    diffs = [(a.cpu().int() - b.int()).abs() for a, b in zip(on_device, on_cpu, strict=True)]
    figures = {
        "device": device, "images": count, "source": f"{width}x{height}", "size": size,
        "decode_images_per_s": decode, "decode_and_views_images_per_s": with_views,
        "max_abs_diff_vs_cpu": max(int(d.max()) for d in diffs),
        "mean_abs_diff_vs_cpu": sum(float(d.float().mean()) for d in diffs) / len(diffs),
    }
    print(json.dumps(figures, indent=2))
    json_path.write_text(json.dumps(figures, indent=2))


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _hours_to_text(hours: float | None) -> str:
    return "n/a" if hours is None else f"{hours * 60:,.0f} min"


def _judged(status: str, meets: bool | None) -> str:
    """A part's status, or ``misses target`` where it ran but a figure misses its target."""
    return "misses target" if status == "ok" and meets is False else status


def summary_rows(parts: dict[str, Part], batch: int) -> list[tuple[str, str, str, str]]:
    """``(what, figure, target, status)`` rows of the summary table."""
    rows: list[tuple[str, str, str, str]] = []
    tests = parts.get("tests")
    if tests is not None:
        f = tests.figures
        text = "n/a"
        if f:
            passed = f["tests"] - f["failures"] - f["errors"] - f["skipped"]
            text = f"{passed} passed, {f['failures'] + f['errors']} failed, {f['skipped']} skipped"
            if f["failed"]:
                text += " (" + ", ".join(f["failed"][:4]) + ")"
        rows.append(("gpu tests", text, "all pass", tests.status))
    training: dict[str, dict[str, Any]] = {}
    for name in ("throughput-device", "throughput-workers"):
        part = parts.get(name)
        if part is None:
            continue
        f = part.figures
        pipeline = name.split("-")[1]
        label = f"{pipeline} pipeline" + (f", {f.get('workers')} workers" if f.get("workers")
                                          else "")
        input_rate = f.get("input_images_per_s")
        best = max((r.get("images_per_s", 0.0) for r in f.get("rows", [])), default=0.0)
        ratio = f"{input_rate / best:.1f}x the best step rate" if input_rate and best else ""
        meets = input_rate / best >= 2 if input_rate and best else None
        rows.append((f"input pipeline alone ({label})",
                     f"{_fmt(input_rate)} images/s {ratio}".strip(),
                     ">= 2x the step rate", _judged(part.status, meets)))
        for row in f.get("rows", []):
            training[f"{pipeline}/{row['config']}"] = row
            figure = (f"{_fmt(row.get('images_per_s'))} images/s, 200 epochs "
                      f"{_hours_to_text(row.get('hours_200_epochs'))}"
                      if "error" not in row else row["error"])
            rows.append((f"training step ({pipeline}, {row['config']})", figure, "",
                         "ok" if "error" not in row else "failed"))
        if not f:
            rows.append((f"training steps ({pipeline} pipeline)", "n/a", "", part.status))
    heads = parts.get("heads")
    if heads is not None:
        for label in ("eager", "compiled"):
            f = heads.figures.get(label)
            figure = "n/a" if f is None else (
                f"bank {f['bank_ms']:.2f} ms, loop {f['loop_ms']:.2f} ms: "
                f"loop/bank {f['loop_over_bank']:.2f}x")
            status = heads.status if f is not None or heads.status != "ok" else "not run"
            meets = None if f is None else f["loop_over_bank"] >= 3
            rows.append((f"expert bank vs per-expert loop ({label})", figure, ">= 3x",
                         _judged(status, meets)))
    jpeg = parts.get("jpeg")
    if jpeg is not None:
        f = jpeg.figures
        rows.append((f"JPEG decode, batched ({f.get('source', '?')})",
                     f"{_fmt(f.get('decode_images_per_s'))} images/s", "", jpeg.status))
        rows.append((f"JPEG decode + views at {f.get('size', '?')} px",
                     f"{_fmt(f.get('decode_and_views_images_per_s'))} images/s", "",
                     jpeg.status))
        rows.append(("JPEG decode: device vs CPU decoder",
                     f"max {f.get('max_abs_diff_vs_cpu', 'n/a')}, mean "
                     f"{_fmt(f.get('mean_abs_diff_vs_cpu'), 3)} (uint8 levels)", "",
                     jpeg.status))
    recipe = training.get("device/bf16+cl")
    if recipe is not None and "images_per_s" in recipe:
        rows.append(("projected 200 STL-10 epochs (star_stl10: device views, bf16, "
                     "channels_last)", _hours_to_text(recipe["hours_200_epochs"]),
                     "< 60 min (aim 30)", _judged("ok", recipe["hours_200_epochs"] < 1)))
    fastest = [(r["images_per_s"], key) for key, r in training.items() if "images_per_s" in r]
    if fastest:
        rate, key = max(fastest)
        hours = EPOCHS * (STL10_IMAGES // batch * batch) / rate / 3600
        rows.append((f"projected 200 STL-10 epochs (fastest: {key})", _hours_to_text(hours),
                     "< 60 min (aim 30)", _judged("ok", hours < 1)))
    return rows


def markdown(rows: list[tuple[str, str, str, str]], header: str) -> str:
    """The summary as a markdown table under ``header``."""
    lines = [header, "", "| what | figure | target | status |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines) + "\n"


def device_name(device: str) -> str:
    """The GPU's name (or ``cpu``), asked in a subprocess so this process stays CUDA-free."""
    if not device.startswith("cuda"):
        return "cpu"
    code = "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() " \
           "else 'no CUDA device')"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
        return out.stdout.strip() or "unknown"
    except (subprocess.TimeoutExpired, OSError):
        return "unknown"


def build_parts(args: argparse.Namespace, out: Path) -> list[Part]:
    """The parts to run, with time limits that share ``args.budget``."""
    py = sys.executable
    quick = args.quick
    throughput = [py, "benchmarks/gpu_throughput.py", "--device", args.device]
    if quick:
        throughput += ["--batch", "4", "--steps", "1", "--warmup", "0", "--images", "8",
                       "--backbone", "small_cnn"]
    else:
        throughput += ["--batch", str(args.batch), "--steps", str(args.steps)]
    # a test module whose optional package is missing there must not stop the gpu tests
    tests = [py, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
             "--continue-on-collection-errors", f"--junitxml={out / 'tests.xml'}", "-s"]
    if quick:  # the CPU-safe, fast ones
        tests += ["tests/views/test_device_views_gpu.py", "-k", "not 1200 and not jpeg"]
    else:
        tests += ["tests"]
    heads = [py, "benchmarks/heads.py", "--device", args.device, "--json",
             str(out / "heads.json")]
    if quick:
        heads += ["--reps", "1", "--warmup", "0", "--no-memory", "--rows", "64"]
    jpeg = [py, __file__, "--part", "jpeg", "--device", args.device, "--out", str(out)]
    if quick:
        jpeg += ["--jpeg-count", "4", "--quick"]
    # shares of the budget, from what each part took on one H200
    shares = {"tests": 0.25, "throughput-device": 0.3, "throughput-workers": 0.17,
              "heads": 0.2, "jpeg": 0.08}
    parts = [
        Part("tests", tests, 0, env={"MOEHEADS_TEST_DEVICE": args.device}),
        Part("throughput-device", [*throughput, "--pipeline", "device", "--configs",
                                   "fp32+cl" if quick else args.device_configs,
                                   "--json", str(out / "throughput-device.json")], 0),
        Part("throughput-workers", [*throughput, "--pipeline", "workers", "--workers",
                                    "1" if quick else str(args.workers), "--configs",
                                    "fp32" if quick else args.workers_configs,
                                    "--json", str(out / "throughput-workers.json")], 0),
        Part("heads", heads, 0),
        Part("jpeg", jpeg, 0),
    ]
    for part in parts:
        part.limit = max(30.0, shares[part.name] * args.budget)
    return [p for p in parts if not args.only or p.name in args.only]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu-check")
    parser.add_argument("--budget", type=float, default=460.0,
                        help="seconds shared by the parts (each part gets a share as its limit)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--only", nargs="*", default=None, help="run only these parts")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    parser.add_argument("--device-configs", default="fp32,bf16,bf16+cl,bf16+cl+compile")
    parser.add_argument("--workers-configs", default="bf16+cl,bf16+cl+compile")
    parser.add_argument("--part", choices=["jpeg"], help=argparse.SUPPRESS)
    parser.add_argument("--jpeg-count", type=int, default=256)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.part == "jpeg":
        size = 32 if args.quick else 224
        jpeg_part(args.device, args.jpeg_count, 375, 500, size, 1 if args.jpeg_count < 16 else 5,
                  out / "jpeg.json")
        return
    for stale in out.glob("*.json"):
        stale.unlink()
    tic = time.perf_counter()
    parts = {p.name: p for p in build_parts(args, out)}
    for part in parts.values():
        run_part(part, out)
    junit = out / "tests.xml"
    if "tests" in parts and junit.is_file():
        parts["tests"].figures = pytest_figures(junit)
    total = time.perf_counter() - tic
    name = device_name(args.device)
    header = (f"## gpu-check on {name} ({args.device}{', quick' if args.quick else ''}), "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {total:.0f} s")
    text = markdown(summary_rows(parts, args.batch), header)
    (out / "summary.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"device": name, "seconds": total,
         "parts": {k: {"status": p.status, "seconds": p.seconds, "figures": p.figures}
                   for k, p in parts.items()}}, indent=2))
    print()
    print(text)
    print(f"written to {out / 'summary.md'}")


if __name__ == "__main__":
    main()
