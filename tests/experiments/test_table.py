"""Comparing a sweep: per-setting means and Student-t intervals, files and the plot axis."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from moeheads.cli import app
from moeheads.errors import ConfigError
from moeheads.experiments.plot import x_axis
from moeheads.experiments.table import compare_sweep, headline, recipe_differences

#: setting -> (num_experts, router, linear accuracy per seed, CCA per seed)
RESULTS = {
    "n2": (2, "star", [0.80, 0.82, 0.84], [0.5, 0.6, 0.7]),
    "n4": (4, "star", [0.85, 0.85, 0.88], [0.4, 0.4, 0.4]),
}


def _fake_sweep(folder: Path) -> Path:
    runs = []
    for setting, (experts, router, linear, cca) in RESULTS.items():
        for seed, (accuracy, correlation) in enumerate(zip(linear, cca, strict=True)):
            name = f"{setting}-seed{seed}"
            runs.append({"index": len(runs), "name": name, "setting": setting, "seed": seed,
                         "values": {"heads.num_experts": experts}})
            run = folder / name
            (run / "eval").mkdir(parents=True)
            (run / "recipe.yaml").write_text(yaml.safe_dump({
                "name": name, "seed": seed, "output_dir": str(folder),
                "heads": {"num_experts": experts, "router": {"name": router}},
                "trainer": {"epochs": 3}}))
            results = {"linear": {"in-domain fashion_mnist": accuracy},
                       "cca-fashion_mnist": {"mean": correlation},
                       "routing-fashion_mnist": {"experts shared": 1}}
            for stem, summary in results.items():
                (run / "eval" / f"{stem}.json").write_text(json.dumps({"result": {
                    "summary": summary, "stats": {"overlap": {"inv|eq": 0.5}}}}))
    runs.append({"index": len(runs), "name": "n8-seed0", "setting": "n8", "seed": 0,
                 "values": {"heads.num_experts": 8}})  # never ran
    (folder / "sweep.yaml").write_text(yaml.safe_dump({"runs": runs}))
    return folder


def test_means_and_intervals_match_hand_derived_values(tmp_path: Path) -> None:
    table = compare_sweep(_fake_sweep(tmp_path / "sweep"))
    rows = {r.setting: r for r in table.rows}
    assert set(rows) == {"n2", "n4"} and table.missing == ["n8-seed0"]
    linear = rows["n2"].metrics["linear: in-domain fashion_mnist"]
    # mean 0.82, s = 0.02, half width = t_{0.975,2} s / sqrt(3) = 4.3027 * 0.02 / 1.7321
    assert linear.mean == pytest.approx(0.82) and linear.half_width == pytest.approx(0.049683,
                                                                                     abs=1e-6)
    # 0.85, 0.85, 0.88: mean 0.86, s = sqrt((1e-4 + 1e-4 + 4e-4) / 2) = 0.017321,
    # half width = 4.3027 * 0.017321 / 1.7321 = 0.043027
    other = rows["n4"].metrics["linear: in-domain fashion_mnist"]
    assert other.mean == pytest.approx(0.86) and other.half_width == pytest.approx(0.043027,
                                                                                   abs=1e-6)
    cca = rows["n4"].metrics["cca-fashion_mnist: mean"]
    assert cca.mean == pytest.approx(0.4) and cca.half_width == pytest.approx(0.0, abs=1e-12)
    assert rows["n2"].differences == {"heads.num_experts": 2}
    assert table.headline_columns() == ["linear in-domain", "CCA", "routing overlap",
                                       "experts shared"]

    markdown = table.markdown_path.read_text()
    assert "| setting | heads.num_experts | seeds | linear in-domain | CCA |" in markdown
    assert "| n2 | 2 | 3 | 0.82 ± 0.05 | 0.6 ± 0.25 | 0.5 ± 0 | 1 ± 0 |" in markdown
    assert "n8-seed0" in markdown and "compare.png" in markdown
    assert table.plot_path is not None and table.plot_path.stat().st_size > 1000
    with table.csv_path.open() as file:
        records = list(csv.DictReader(file))
    assert records[0]["setting"] == "n2" and records[0]["seeds"] == "0 1 2"
    assert float(records[0]["linear: in-domain fashion_mnist ci95"]) == pytest.approx(0.049683,
                                                                                     abs=1e-6)


def test_compare_command_on_a_sweep_folder(tmp_path: Path) -> None:
    folder = _fake_sweep(tmp_path / "sweep")
    result = CliRunner().invoke(app, ["compare", str(folder)])
    assert result.exit_code == 0, result.output
    assert "0.86 ± 0.043" in result.output and "compare.csv" in result.output
    with pytest.raises(ConfigError, match="not a sweep folder"):
        compare_sweep(tmp_path)


def test_headline_keys_differences_and_plot_axis() -> None:
    assert headline("cca-stl10: mean") == "CCA" and headline("cca: mean") == "CCA"
    assert headline("linear: mean") == "linear mean" and headline("knn: top5") is None
    assert headline("routing-x: overlap inv|eq") == "routing overlap"
    differences = recipe_differences({"a": {"name": "a", "x": {"y": 1}, "z": 0},
                                      "b": {"name": "b", "x": {"y": 2}, "z": 0}})
    assert differences == {"a": {"x.y": 1}, "b": {"x.y": 2}}
    key, xs, lines = x_axis(["n2_star", "n2_hard", "n4_star"],
                            [{"heads.num_experts": 2, "heads.router.name": "star"},
                             {"heads.num_experts": 2, "heads.router.name": "hard"},
                             {"heads.num_experts": 4, "heads.router.name": "star"}])
    assert key == "heads.num_experts" and xs == [2.0, 2.0, 4.0]
    assert lines == ["name=star", "name=hard", "name=star"]
    assert x_axis(["simclr", "star"], [{"setting": "simclr"}, {"setting": "star"}])[0] is None
