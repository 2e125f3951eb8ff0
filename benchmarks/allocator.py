"""CPU training throughput: the allocator tuning applied by the command line versus where
the library applied it before (inside training) and versus none (a notebook's default).

Each variant trains the same small recipe (the quickstart's model with 16 experts of
width 512, so the expert bank's buffers are large) in a fresh process, in rotation, and
reports the images per second of the second epoch; the ratios are taken within each
round, so machine load drifts cancel.

    python benchmarks/allocator.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

OVERRIDES = [
    "trainer.epochs=2", "trainer.steps_per_epoch=12", "trainer.batch_size=256",
    "monitor.knn_every=0", "monitor.cca_every=0", "monitor.routing=false",
    "heads.num_experts=16", "heads.hidden_features=[512,512]", "backbone.width=32",
    "evaluation=[]",
]

#: variant -> Python code run in a fresh interpreter (``RECIPE``/``OUT`` filled in).
VARIANTS = {
    "cli (tuned at start-up)": (
        "import sys; from moeheads.cli import main; "
        "sys.argv = ['moeheads', 'run', 'quickstart', *[f'--set={{o}}' for o in {overrides}], "
        "'--set=output_dir={out}', '--resume=never']; main()"
    ),
    "library, tuned before training": (
        "from moeheads.runtime.allocator import keep_cpu_buffers; import moeheads; "
        "from moeheads.api import validate; r = validate('quickstart', {overrides} + "
        "['output_dir={out}']); keep_cpu_buffers(); moeheads.run(r, resume='never')"
    ),
    "library, glibc defaults": (
        "import moeheads; moeheads.run('quickstart', {overrides} + ['output_dir={out}'], "
        "resume='never')"
    ),
}


def images_per_second(code: str, out: Path) -> float:
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    epochs = [json.loads(line) for line in (out / "quickstart" / "metrics.jsonl").open()
              if '"kind": "epoch"' in line]
    return float(epochs[-1]["images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(args.rounds):
        for name, template in VARIANTS.items():
            with tempfile.TemporaryDirectory() as folder:
                code = template.format(overrides=OVERRIDES, out=folder)
                rates[name].append(images_per_second(code, Path(folder)))
        print(f"round {round_ + 1}: " + ", ".join(
            f"{name} {values[-1]:.0f} img/s" for name, values in rates.items()), flush=True)
    cli = rates["cli (tuned at start-up)"]
    print(f"\n{'variant':34s} {'median img/s':>12s} {'cli / variant (median of rounds)':>34s}")
    for name, values in rates.items():
        ratio = statistics.median(c / v for c, v in zip(cli, values, strict=True))
        print(f"{name:34s} {statistics.median(values):12.0f} {ratio:34.3f}")


if __name__ == "__main__":
    main()
