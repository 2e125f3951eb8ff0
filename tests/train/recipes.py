"""A tiny recipe for end-to-end engine tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def tiny_recipe(output_dir: Path, **changes: Any) -> dict[str, Any]:
    """A recipe that trains in seconds on the CPU (synthetic_shapes, 16 px, tiny CNN)."""
    recipe: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "output_dir": str(output_dir),
        "data": {
            "dataset": {"name": "synthetic_shapes", "length": 64, "size": 16},
            "probe_train": {"name": "synthetic_shapes", "length": 40, "size": 16, "seed": 1},
            "probe_test": {"name": "synthetic_shapes", "split": "test", "length": 20,
                           "size": 16},
            "num_workers": 0,
        },
        "views": {"size": 16, "blur_kernel_size": 3},
        "backbone": {"name": "small_cnn", "width": 4, "depth": 2},
        "heads": {"num_experts": 3, "out_features": 8, "hidden_features": [8],
                  "router": {"name": "star"}},
        "tasks": {"inv": {"name": "ntxent"}, "eq": {"name": "star_eq", "hidden_dim": 16}},
        "optimizer": {"name": "sgd", "lr": 0.05},
        "trainer": {"epochs": 2, "batch_size": 16, "precision": "fp32", "device": "cpu",
                    "log_every": 1},
        "monitor": {"knn_k": 5},
    }
    for dotted, value in changes.items():
        node = recipe
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return recipe


def write_recipe(path: Path, recipe: dict[str, Any]) -> Path:
    """Write ``recipe`` as YAML to ``path``."""
    path.write_text(yaml.safe_dump(recipe))
    return path
