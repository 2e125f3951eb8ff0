"""Run evaluation protocols on a trained model: ``moeheads eval`` and a recipe's stages.

Example:
    ``moeheads eval runs/star --protocol knn --set k=20`` is::

        record, path = evaluate_run("runs/star", "knn", {"k": 20})
        record["result"]["summary"]  # {'top1': ..., 'top5': ...}

Every result is written to ``<run>/eval/<protocol>[-<dataset>].json`` (the dataset
suffix when one dataset was named) as ``{"protocol", "options", "source", "step",
"created", "result": {"summary": {...}, ...}}``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from moeheads.errors import ConfigError
from moeheads.eval import (  # noqa: F401  (register the stages)
    PROTOCOLS,
    stages_equivariance,
    stages_heldout,
    stages_labelled,
    stages_routing,
)
from moeheads.eval.context import EvalContext, StageOptions, as_component
from moeheads.eval.detection import stage as detection_stage  # noqa: F401  (registers it)
from moeheads.eval.loading import load_trained
from moeheads.eval.results import summary_table, write_result
from moeheads.eval.stages import STAGES
from moeheads.recipe.schema import Recipe
from moeheads.registry import describe_validation_error
from moeheads.rundir.lock import RunLock
from moeheads.runtime.distributed import resolve_device


def validate_stage(protocol: str, options: Mapping[str, Any]) -> StageOptions:
    """The validated options of a protocol's stage.

    Raises:
        ConfigError: Naming an unknown protocol (with close names) or the bad option.
    """
    if protocol not in STAGES:
        PROTOCOLS.get(protocol)  # raises with the registered names
        raise ConfigError(f"protocol {protocol!r} has no evaluation stage")
    model = STAGES[protocol].options
    try:
        validated = model.model_validate(dict(options))
    except ValidationError as error:
        raise ConfigError(
            describe_validation_error(error, f"protocol {protocol!r}", model.model_fields)
        ) from None
    validated.check()
    return validated


def output_stem(protocol: str, options: StageOptions) -> str:
    """``<protocol>`` or ``<protocol>-<dataset>`` when exactly one dataset was named."""
    named = getattr(options, "dataset", None)
    datasets = getattr(options, "datasets", None)
    if named is None and datasets is not None and len(datasets) == 1:
        named = datasets[0]
    return protocol if named is None else f"{protocol}-{as_component(named).name}"


def evaluate(
    ctx: EvalContext, protocol: str, options: Mapping[str, Any]
) -> tuple[dict[str, Any], Path]:
    """Run one protocol and write its result file; returns the record and the file.

    The evaluation folder is locked meanwhile (``eval/.lock``): a second evaluation of the
    same run, in another process, says that it waits and runs after this one."""
    validated = validate_stage(protocol, options)
    ctx.stem = output_stem(protocol, validated)
    with RunLock(ctx.eval_dir, on_busy=lambda line: print(line, file=sys.stderr, flush=True)):
        return _evaluate_locked(ctx, protocol, validated)


def _evaluate_locked(ctx: EvalContext, protocol: str, validated: StageOptions,
                     ) -> tuple[dict[str, Any], Path]:
    result = STAGES[protocol].run(ctx, validated)
    record = {
        "protocol": protocol,
        "options": validated.model_dump(mode="json"),
        "source": str(ctx.trained.source),
        "step": ctx.trained.step,
        "result": result,
    }
    path = write_result(ctx.eval_dir, ctx.stem, record)
    return record, path


def evaluate_run(
    run_or_checkpoint: str | Path, protocol: str, options: Mapping[str, Any],
    device: str = "auto",
) -> tuple[dict[str, Any], Path]:
    """Load a run directory or checkpoint and run one protocol on it."""
    validate_stage(protocol, options)  # before the (slower) model loading
    target = resolve_device(device)
    return evaluate(EvalContext(load_trained(run_or_checkpoint, target), target), protocol,
                    options)


def check_stages(recipe: Recipe) -> None:
    """Validate a recipe's evaluation stages (before pretraining spends any time)."""
    for index, stage in enumerate(recipe.evaluation):
        try:
            validate_stage(stage.protocol, stage.options)
        except ConfigError as error:
            raise ConfigError(f"evaluation[{index}]: {error}") from None


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a single process."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass(frozen=True)
class FinishedRun:
    """What :func:`finish_run` did.

    Attributes:
        records: Each evaluation stage's result record and file, in the recipe's order.
        report: The run's ``report.md``.
    """

    records: list[tuple[dict[str, Any], Path]]
    report: Path


def finish_run(recipe: Recipe, run_dir: Path, console: Console | None = None) -> FinishedRun | None:
    """After pretraining (main process only): run the recipe's evaluation stages and write the
    report (``None`` on other processes)."""
    from moeheads.eval.report import write_report

    if not is_main_process():
        return None
    console = console or Console()
    records = []
    if recipe.evaluation:
        device = resolve_device(recipe.trainer.device)
        ctx = EvalContext(load_trained(run_dir, device), device)
        for stage in recipe.evaluation:
            record, path = evaluate(ctx, stage.protocol, stage.options)
            records.append((record, path))
            console.print(summary_table(f"{stage.protocol} ({path.name})",
                                        record["result"]["summary"]))
    report = write_report(run_dir)
    console.print(f"report written to {report}", highlight=False)
    return FinishedRun(records, report)
