"""How long checking a recipe and planning a sweep take, next to importing PyTorch.

    python benchmarks/validate.py [--repeats 3]

Runs, in turn and in fresh processes, ``python -c "import torch, torchvision"`` (the
floor: every command that builds a model pays it), ``moeheads validate star_stl10`` and
``moeheads sweep study_fashion_mnist --dry-run`` (24 runs), ``--repeats`` times each
(interleaved, so a busy machine slows all three alike), and prints the median wall-clock
and CPU times and their ratios to the import. A dry-run checks each distinct model once,
not once per run, so it should cost about what one ``validate`` does.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])  # this checkout's moeheads
COMMANDS = {
    "import torch, torchvision": [sys.executable, "-c", "import torch, torchvision"],
    "moeheads validate star_stl10": [sys.executable, "-m", "moeheads", "validate",
                                     "star_stl10"],
    "moeheads sweep study_fashion_mnist --dry-run": [
        sys.executable, "-m", "moeheads", "sweep", "study_fashion_mnist", "--dry-run"],
}


def timed(command: list[str], cwd: str) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=cwd,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(
                       filter(None, [ROOT, os.environ.get("PYTHONPATH")]))})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpus: dict[str, list[float]] = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory() as cwd:  # outside a clone: the shipped recipes
        for _ in range(repeats):
            for name, command in COMMANDS.items():
                wall, cpu = timed(command, cwd)
                walls[name].append(wall)
                cpus[name].append(cpu)
    base_wall = statistics.median(walls["import torch, torchvision"])
    base_cpu = statistics.median(cpus["import torch, torchvision"])
    print(f"median of {repeats} runs each, on {os.cpu_count()} CPUs")
    for name in COMMANDS:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"{name:46s} wall {wall:6.2f} s ({wall / base_wall:4.2f}x)   "
              f"cpu {cpu:6.2f} s ({cpu / base_cpu:4.2f}x)")


if __name__ == "__main__":
    main()
