"""A sweep's plan: the runs that the product of settings, grid and seeds makes.

A sweep is a base recipe plus a ``sweep:`` block (or the same given on the command line)::

    sweep:
      name: study              # the folder <output_dir>/<name> (default: <recipe name>-sweep)
      seeds: [0, 1, 2]
      settings:                # named variants, each merged into the recipe (null deletes)
        simclr: {heads: {num_experts: 1, router: {name: hard}}, tasks: {eq: null}}
        star: {}
      grid:                    # FIELD.PATH: [values]; the product with the settings
        heads.num_experts: [2, 4, 8, 16]
      order: by_setting        # or by_seed: every setting with the first seed, then the next

Runs are ordered setting by setting (settings, then the grid in the order given), with
the seeds innermost (``order: by_seed`` puts the seeds outermost, so an unfinished sweep
still covers every setting); run ``<setting>-seed<k>`` lives in
``<sweep folder>/<setting>-seed<k>``.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from moeheads.errors import ConfigError
from moeheads.recipe.io import apply_overrides

__all__ = ["SweepPlan", "SweepRun", "SweepSpec", "merge", "parse_grid", "plan_sweep"]

MANIFEST = "sweep.yaml"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep varies.

    Attributes:
        name: The sweep folder's name (``None``: ``<recipe name>-sweep``).
        seeds: The seeds every setting runs with (empty: the recipe's own seed).
        settings: Named variants, each a partial recipe merged into the base.
        grid: ``FIELD.PATH`` -> values; every combination is a setting.
        order: ``by_setting`` (seeds innermost) or ``by_seed`` (seeds outermost).
    """

    name: str | None = None
    seeds: list[int] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    order: str = "by_setting"

    @classmethod
    def from_block(cls, block: Any) -> SweepSpec:
        """The spec of a recipe's ``sweep:`` block.

        Raises:
            ConfigError: An unknown key or a value of the wrong kind.
        """
        if block is None:
            return cls()
        if not isinstance(block, Mapping):
            raise ConfigError("sweep: must be a mapping (name, seeds, settings, grid)")
        unknown = sorted(set(block) - {"name", "seeds", "settings", "grid", "order"})
        if unknown:
            raise ConfigError(f"sweep.{unknown[0]}: unknown field "
                              "(name, seeds, settings, grid, order)")
        order = block.get("order", "by_setting")
        if order not in ("by_setting", "by_seed"):
            raise ConfigError(f"sweep.order: by_setting or by_seed, got {order!r}")
        seeds, settings, grid = (block.get(k) or default for k, default in
                                 (("seeds", []), ("settings", {}), ("grid", {})))
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
            raise ConfigError("sweep.seeds: must be a list of integers")
        if not isinstance(settings, Mapping) or not all(
                isinstance(v, Mapping | None) for v in settings.values()):
            raise ConfigError("sweep.settings: must map each name to a partial recipe")
        if not isinstance(grid, Mapping) or not all(isinstance(v, list) and v
                                                    for v in grid.values()):
            raise ConfigError("sweep.grid: must map each FIELD.PATH to a non-empty list")
        name = block.get("name")
        return cls(None if name is None else str(name), list(seeds),
                   {str(k): dict(v or {}) for k, v in settings.items()},
                   {str(k): list(v) for k, v in grid.items()}, order)

    def updated(self, grid: Mapping[str, list[Any]] | None = None,
                seeds: Sequence[int] | None = None, name: str | None = None) -> SweepSpec:
        """This spec with command-line grid entries (added or replacing), seeds and name."""
        return SweepSpec(name or self.name, list(seeds) if seeds else self.seeds,
                         self.settings, {**self.grid, **(grid or {})}, self.order)


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    Attributes:
        index: Its position in the sweep (what ``--index`` selects).
        name: ``<setting>-seed<k>``: the run's recipe name and folder.
        setting: The setting's label (the same for every seed).
        seed: The seed.
        values: What the setting changes: ``setting`` (a named variant) and each grid field.
        recipe: The run's recipe as a mapping (name, seed and output directory set).
    """

    index: int
    name: str
    setting: str
    seed: int
    values: dict[str, Any]
    recipe: dict[str, Any]


@dataclass(frozen=True)
class SweepPlan:
    """A sweep's folder, spec and runs."""

    folder: Path
    source: str
    spec: SweepSpec
    runs: list[SweepRun]
    launcher: dict[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        """What ``sweep.yaml`` holds: the spec and each run's name, setting, seed, values."""
        return {
            "recipe": self.source,
            "sweep": {"name": self.folder.name, "seeds": self.spec.seeds,
                      "settings": self.spec.settings, "grid": self.spec.grid,
                      "order": self.spec.order},
            "runs": [{"index": r.index, "name": r.name, "setting": r.setting, "seed": r.seed,
                      "values": r.values} for r in self.runs],
        }

    def write_manifest(self) -> Path:
        """Write ``<folder>/sweep.yaml`` (replacing it: the plan is cheap to recompute)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / MANIFEST
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # writers may race
        temporary.write_text(yaml.safe_dump(self.manifest(), sort_keys=False))
        temporary.replace(path)
        return path


def merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, mapping by mapping; ``None`` deletes a key."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_grid(entries: Sequence[str]) -> dict[str, list[Any]]:
    """``["heads.num_experts=2,4,8"]`` -> ``{"heads.num_experts": [2, 4, 8]}``.

    Each value is read as YAML; a value starting with ``[`` is read whole as a YAML list
    (``'views.scale=[[0.2, 1.0], [0.4, 1.0]]'``).

    Raises:
        ConfigError: An entry without ``=`` or a value that is not valid YAML.
    """
    grid: dict[str, list[Any]] = {}
    for entry in entries:
        key, sep, raw = entry.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise ConfigError(f"--grid expects FIELD.PATH=V1,V2,..., got {entry!r}")
        try:
            values = (yaml.safe_load(raw) if raw.lstrip().startswith("[")
                      else [yaml.safe_load(v) for v in raw.split(",")])
        except yaml.YAMLError as error:
            raise ConfigError(f"--grid {key}: {raw!r} is not valid YAML ({error})") from None
        if not isinstance(values, list) or not values:
            raise ConfigError(f"--grid {key}: expected a list of values, got {raw!r}")
        grid[key.strip()] = values
    return grid


def _label(value: Any) -> str:
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True)
    return _UNSAFE.sub("-", str(text).strip()).strip("-.") or "x"


def plan_sweep(base: Mapping[str, Any], spec: SweepSpec, source: str = "",
               launcher: Mapping[str, Any] | None = None) -> SweepPlan:
    """Expand a base recipe (a mapping, ``sweep:`` block removed) into the sweep's runs;
    ``launcher`` is the recipe's ``launcher:`` block (kept for ``--launcher``).

    Raises:
        ConfigError: No ``name`` in the recipe, or two runs with the same name.
    """
    name = base.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("a sweep's recipe needs a name")
    folder = Path(str(base.get("output_dir", "runs"))) / (spec.name or f"{name}-sweep")
    settings = spec.settings or {"": {}}
    keys = list(spec.grid)
    seeds = spec.seeds or [int(base.get("seed", 0))]
    combos: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    for setting_name, changes in settings.items():
        for combo in itertools.product(*(spec.grid[k] for k in keys)):
            parts = [_label(setting_name)] if setting_name else []
            parts += [f"{k.rsplit('.', 1)[-1]}-{_label(v)}" for k, v in zip(keys, combo,
                                                                            strict=True)]
            label = "_".join(parts) or "base"
            values: dict[str, Any] = {"setting": setting_name} if setting_name else {}
            values.update(zip(keys, combo, strict=True))
            overrides = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                         .removesuffix("\n...") for k, v in zip(keys, combo, strict=True)]
            combos.append((label, setting_name, values,
                           apply_overrides(merge(dict(base), changes), overrides)))
    pairs = ([(c, s) for s in seeds for c in combos] if spec.order == "by_seed"
             else [(c, s) for c in combos for s in seeds])
    runs: list[SweepRun] = []
    for (label, _, values, recipe), seed in pairs:
        run_name = f"{label}-seed{seed}"
        runs.append(SweepRun(len(runs), run_name, label, seed, values, {
            **copy.deepcopy(recipe), "name": run_name, "seed": seed, "output_dir": str(folder)}))
    names = [r.name for r in runs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"two runs of the sweep would share the name {duplicate!r}")
    return SweepPlan(folder, source, spec, runs, dict(launcher or {}))
