"""How long ``moeheads --help`` takes next to ``python -c "import typer"`` (best of N).

    python benchmarks/cli_startup.py [--repeats 10]

Prints wall-clock and CPU (user + system) times and the ratios; the target is a ratio
under 3. On a machine shared with other work the CPU times are the steadier figure.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time


def best_of(command: list[str], repeats: int) -> tuple[float, float]:
    """The least wall-clock and the least CPU seconds of ``repeats`` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    repeats = parser.parse_args().repeats
    commands = {
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "moeheads --help": [sys.executable, "-m", "moeheads", "--help"],
        "moeheads list losses": [sys.executable, "-m", "moeheads", "list", "losses"],
    }
    times = {name: best_of(command, repeats) for name, command in commands.items()}
    for name, (wall, cpu) in times.items():
        print(f"{name:26s} wall {wall:.3f} s   cpu {cpu:.3f} s")
    (typer_wall, typer_cpu), (help_wall, help_cpu) = list(times.values())[:2]
    print(f"ratio --help / import typer: wall {help_wall / typer_wall:.2f}x, "
          f"cpu {help_cpu / typer_cpu:.2f}x (target < 3x)")


if __name__ == "__main__":
    main()
