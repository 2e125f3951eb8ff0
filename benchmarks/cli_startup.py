"""How long ``moeheads --help`` takes next to ``python -c "import typer"`` (best of N).

    python benchmarks/cli_startup.py [--repeats 5]

Prints both times and their ratio; the target is a ratio under 3.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def best_of(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    typer_s = best_of([sys.executable, "-c", "import typer"], repeats)
    help_s = best_of([sys.executable, "-m", "moeheads", "--help"], repeats)
    list_s = best_of([sys.executable, "-m", "moeheads", "list", "losses"], repeats)
    print(f"python -c 'import typer': {typer_s:.3f} s")
    print(f"moeheads --help:          {help_s:.3f} s")
    print(f"moeheads list losses:     {list_s:.3f} s")
    print(f"ratio --help / import typer: {help_s / typer_s:.2f}x (target < 3x)")


if __name__ == "__main__":
    main()
