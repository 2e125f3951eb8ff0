"""The Python API of a whole run: pretrain, then evaluate, as the command line does.

Every command of ``moeheads`` is a thin layer over a function here: :func:`validate`,
:func:`run`, :func:`evaluate`, :func:`report`, :func:`compare_runs`,
:func:`compare_sweep` and :func:`export`; each is as usable from a notebook. ``run``,
``evaluate`` and ``validate`` are also reachable as ``moeheads.run`` and so on (imported
on first use, so ``import moeheads`` stays light), and this module loads PyTorch only
when a function that needs it is called.

Example:
    >>> import moeheads
    >>> results = moeheads.run("recipes/quickstart.yaml", overrides=["trainer.epochs=1"])
    ... # doctest: +SKIP
    >>> results.evaluations[0].summary  # doctest: +SKIP
    {'top1': ..., 'top5': ...}
    >>> knn = moeheads.evaluate(results.run_dir, "knn", k=20)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from moeheads.errors import ConfigError

if TYPE_CHECKING:
    from moeheads.experiments.table import SweepTable
    from moeheads.recipe.schema import Recipe

__all__ = [
    "Evaluation",
    "RunResults",
    "compare_runs",
    "compare_sweep",
    "convergence_plots",
    "evaluate",
    "export",
    "report",
    "resolve_recipe",
    "run",
    "validate",
]


@dataclass(frozen=True)
class Evaluation:
    """One evaluation protocol's result.

    Attributes:
        protocol: The protocol (``knn``, ``linear``, ...).
        summary: Its headline numbers (``{"top1": ..., "top5": ...}``).
        record: The whole result file's contents (options, source, details).
        path: The result file ``<run>/eval/<protocol>[-<dataset>].json``.
    """

    protocol: str
    summary: dict[str, Any]
    record: dict[str, Any]
    path: Path

    def table(self) -> Table:
        """The headline numbers as a two-column rich table (``console.print(e.table())``)."""
        from moeheads.eval.results import summary_table

        return summary_table(self.protocol, self.summary)


@dataclass(frozen=True)
class RunResults:
    """What :func:`run` leaves behind.

    Attributes:
        run_dir: The run directory.
        epochs: Epochs completed.
        steps: Optimiser steps taken.
        final_metrics: The last epoch's training metrics.
        backbone: The exported backbone weights (``None`` on processes other than rank 0).
        evaluations: The recipe's evaluation stages, in order (empty on other processes).
        report: The run's ``report.md`` (``None`` on other processes).
    """

    run_dir: Path
    epochs: int
    steps: int
    final_metrics: dict[str, Any]
    backbone: Path | None
    evaluations: list[Evaluation] = field(default_factory=list)
    report: Path | None = None


def resolve_recipe(
    recipe_or_path: Recipe | Mapping[str, Any] | str | os.PathLike[str],
    overrides: Sequence[str] = (),
) -> Recipe:
    """A validated recipe from a file (or a shipped recipe's name, ``"quickstart"``), a
    mapping or a :class:`Recipe`, with overrides set.

    Raises:
        ConfigError: A missing file or an invalid field (after the overrides).
    """

    from pydantic import ValidationError

    from moeheads.recipe.catalog import resolve_recipe_path
    from moeheads.recipe.io import apply_overrides, describe_recipe_errors, load_recipe
    from moeheads.recipe.schema import Recipe

    if isinstance(recipe_or_path, str | os.PathLike):
        return load_recipe(resolve_recipe_path(recipe_or_path), overrides)
    if isinstance(recipe_or_path, Recipe):
        if not overrides:
            return recipe_or_path
        data = recipe_or_path.model_dump(mode="json", exclude_unset=True)
    else:
        data = copy.deepcopy(dict(recipe_or_path))
    try:
        return Recipe.model_validate(apply_overrides(data, list(overrides)))
    except ValidationError as error:
        raise ConfigError(describe_recipe_errors(error, "recipe", None, list(overrides))) from None


def validate(
    recipe_or_path: Recipe | Mapping[str, Any] | str | os.PathLike[str],
    overrides: Sequence[str] = (),
) -> Recipe:
    """The recipe with every default filled in, checked as far as it can be without data:
    its fields, its evaluation stages, and every component built (on the meta device) with
    one batch run through the model.

    Raises:
        ConfigError: Naming each invalid field or stage option, or the field whose
            component cannot be built.
    """

    from moeheads.assembly.check import check_recipe
    from moeheads.eval.runner import check_stages
    from moeheads.recipe.catalog import resolve_recipe_path
    from moeheads.recipe.io import locate_field_error

    recipe = resolve_recipe(recipe_or_path, overrides)
    source = (resolve_recipe_path(recipe_or_path, note=None)
              if isinstance(recipe_or_path, str | os.PathLike) else None)
    try:
        check_stages(recipe)
        check_recipe(recipe)
    except ConfigError as error:  # name the file and line of the field it names
        raise ConfigError(locate_field_error(str(error), source, overrides)) from None
    return recipe


def run(
    recipe_or_path: Recipe | Mapping[str, Any] | str | os.PathLike[str],
    overrides: Sequence[str] = (),
    resume: str = "auto",
    console: Console | None = None,
    *,
    allow_recipe_change: bool = False,
) -> RunResults:
    """Pretrain as a recipe says, then run its evaluation stages and write the report.

    Args:
        recipe_or_path: A recipe YAML file, a recipe as a mapping, or a :class:`Recipe`.
        overrides: ``FIELD.PATH=VALUE`` settings (``"trainer.epochs=3"``; values are YAML).
        resume: ``"auto"`` continues the newest valid checkpoint, ``"never"`` starts over
            (moving an earlier run's files aside to ``<name>.<time>``), or a checkpoint path.
        allow_recipe_change: Continue a checkpoint of a different recipe (a lower learning
            rate, more epochs); without it that is refused, naming what differs.
        console: Where progress and tables go (default: standard output).

    Returns:
        The run directory, training summary, evaluation results and report.

    Raises:
        MoeheadsError: An invalid recipe or evaluation stage (before any training), bad
            data or checkpoints, a non-finite loss, or an interrupted run.
    """
    from moeheads.eval.runner import finish_run
    from moeheads.recipe.schema import Recipe
    from moeheads.runtime.distributed import shutdown_distributed
    from moeheads.train.engine import Trainer

    recipe = validate(recipe_or_path, overrides)
    console = console or Console()
    try:
        source = None if isinstance(recipe_or_path, Recipe | Mapping) else str(recipe_or_path)
        trained = Trainer(recipe, resume=resume, console=console,
                          allow_recipe_change=allow_recipe_change, source=source).run()
        console.print(f"run finished: {trained.run_dir}", highlight=False)
        finished = finish_run(recipe, trained.run_dir, console)  # leaves the process group
    finally:
        shutdown_distributed()
    evaluations = [
        Evaluation(stage.protocol, record["result"]["summary"], record, path)
        for stage, (record, path) in zip(recipe.evaluation, finished.records, strict=True)
    ] if finished is not None else []
    return RunResults(trained.run_dir, trained.epochs, trained.steps, trained.final_metrics,
                      trained.backbone, evaluations, finished and finished.report)


def evaluate(
    run_dir: str | os.PathLike[str], protocol: str, /, *, device: str = "auto", **options: Any
) -> Evaluation:
    """Evaluate a trained model with one protocol; the result is also written to ``<run>/eval/``.

    Args:
        run_dir: A run directory, a checkpoint sidecar or a ``backbone.safetensors`` file.
        protocol: ``knn``, ``nn1``, ``linear``, ``fewshot``, ``cca``, ``equivariance``,
            ``routing`` or ``detection`` (see :mod:`moeheads.eval`). Under torchrun,
            ``detection`` shares its work over the processes (each calls this; rank 0
            writes the result) and the others are refused.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun: ``auto`` or
            ``cuda``, each process on the GPU of its ``LOCAL_RANK``, or ``cpu``).
        **options: The protocol's options (``k=20``, ``dataset="cifar10"``, ``root="data"``).

    Returns:
        The result.

    Raises:
        MoeheadsError: An unknown protocol or option, or a missing run or dataset.
    """
    from moeheads.eval.runner import evaluate_run

    record, path = evaluate_run(Path(run_dir), protocol, options, device)
    return Evaluation(protocol, record["result"]["summary"], record, path)


def report(run_dir: str | os.PathLike[str]) -> Path:
    """Write (or rewrite) a run's ``report.md`` and plots from its files; returns its path.

    Raises:
        ConfigError: ``run_dir`` is not a run directory.
    """
    from moeheads.eval.report import write_report

    return write_report(Path(run_dir))


def compare_runs(run_dirs: Sequence[str | os.PathLike[str]]) -> Table:
    """Runs side by side as a rich table: the recipe fields that differ, the last epoch's
    losses and monitor values, and every evaluation's headline numbers.

    Raises:
        ConfigError: A path that is not a run directory.
    """
    from moeheads.eval.compare import compare_table

    return compare_table([Path(d) for d in run_dirs])


def convergence_plots(run_dirs: Sequence[str | os.PathLike[str]],
                      folder: str | os.PathLike[str] | None = None) -> list[Path]:
    """Overlay the runs' per-task loss and gradient-norm curves as PNGs in ``folder``
    (default: the runs' common parent folder); returns the files written."""
    from moeheads.eval.convergence import convergence_plots as plots

    paths = [Path(d) for d in run_dirs]
    target = Path(folder) if folder is not None else Path(os.path.commonpath(
        [p.resolve().parent for p in paths]))
    return plots(paths, target)


def compare_sweep(folder: str | os.PathLike[str], plot: bool = True) -> SweepTable:
    """A sweep's settings with means and 95% intervals over seeds; also written as
    ``comparison.md``, ``comparison.csv`` and (with ``plot``) a figure in the folder.

    Raises:
        ConfigError: ``folder`` is not a sweep folder, or none of its runs finished.
    """
    from moeheads.experiments.table import compare_sweep as sweep_table

    return sweep_table(Path(folder), plot=plot)


def export(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], *,
           overwrite: bool = False) -> Path:
    """Write a run's (or checkpoint's) backbone weights alone as safetensors, loadable
    into the plain model (``torchvision.models.resnet18().load_state_dict(...,
    strict=False)``), with a JSON sidecar; returns the file written.

    Raises:
        CheckpointError: No valid checkpoint, or ``out`` exists and ``overwrite`` is off.
    """
    from moeheads.assembly.model import BACKBONE_PREFIX
    from moeheads.rundir.export import export_backbone

    return export_backbone(run_dir, out, prefix=BACKBONE_PREFIX, overwrite=overwrite)
