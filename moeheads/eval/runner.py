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

import torch.distributed as dist
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
from moeheads.runtime.distributed import init_distributed, resolve_device, shutdown_distributed
from moeheads.runtime.gather import world_size


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
    same run, in another process, says that it waits and runs after this one. Under
    torchrun (a stage that shares its work), rank 0 alone locks and writes; the other
    ranks return the record and the file rank 0 writes."""
    validated = validate_stage(protocol, options)
    ctx.stem = output_stem(protocol, validated)
    if not is_main_process():
        return _record(ctx, protocol, validated), ctx.eval_dir / f"{ctx.stem}.json"
    with RunLock(ctx.eval_dir, on_busy=lambda line: print(line, file=sys.stderr, flush=True)):
        record = _record(ctx, protocol, validated)
        return record, write_result(ctx.eval_dir, ctx.stem, record)


def _record(ctx: EvalContext, protocol: str, validated: StageOptions) -> dict[str, Any]:
    result = STAGES[protocol].run(ctx, validated)
    return {
        "protocol": protocol,
        "options": validated.model_dump(mode="json"),
        "source": str(ctx.trained.source),
        "step": ctx.trained.step,
        "result": result,
    }


def evaluate_run(
    run_or_checkpoint: str | Path, protocol: str, options: Mapping[str, Any],
    device: str = "auto",
) -> tuple[dict[str, Any], Path]:
    """Load a run directory or checkpoint and run one protocol on it.

    Under torchrun, a protocol whose stage shares its work (``detection``) runs on every
    process, each on the device of its ``LOCAL_RANK``; any other is refused.
    """
    validate_stage(protocol, options)  # before the (slower) model loading
    if _world_size() == 1:
        target = resolve_device(device)
        return evaluate(EvalContext(load_trained(run_or_checkpoint, target), target), protocol,
                        options)
    if not STAGES[protocol].distributed:
        shared = sorted(name for name, s in STAGES.items() if s.distributed)
        raise ConfigError(f"protocol {protocol!r} runs in one process: start moeheads eval "
                          f"without torchrun (protocols that share their work over processes: "
                          f"{', '.join(shared)})")
    joined = dist.is_initialized()
    target = init_distributed(device).device
    try:
        return evaluate(EvalContext(load_trained(run_or_checkpoint, target), target), protocol,
                        options)
    finally:
        if not joined:
            shutdown_distributed()


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


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


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
    """After pretraining: run the recipe's evaluation stages and write the report
    (``None`` on ranks other than 0).

    Under torchrun, the stages that share their work (``detection``) run on every process
    of the process group pretraining joined, the others on rank 0 alone; the group is
    left once no stage needs it. Meanwhile the other ranks wait in the next shared stage,
    so ``trainer.timeout_minutes`` must cover the stages rank 0 runs alone before it.
    """
    from moeheads.eval.report import write_report

    shared = [i for i, s in enumerate(recipe.evaluation) if STAGES[s.protocol].distributed]
    shared = shared if world_size() > 1 else []
    if not shared:
        shutdown_distributed()
    main = is_main_process()
    if not main and not shared:
        return None
    console = console or Console()
    records = []
    if recipe.evaluation:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = resolve_device(recipe.trainer.device, local_rank, _world_size())
        ctx = EvalContext(load_trained(run_dir, device), device)
        for index, stage in enumerate(recipe.evaluation):
            if main or index in shared:
                record, path = evaluate(ctx, stage.protocol, stage.options)
                records.append((record, path))
                if main:
                    console.print(summary_table(f"{stage.protocol} ({path.name})",
                                                record["result"]["summary"]))
            if shared and index == shared[-1]:
                shutdown_distributed()
                if not main:
                    return None
    report = write_report(run_dir)
    console.print(f"report written to {report}", highlight=False)
    return FinishedRun(records, report)
