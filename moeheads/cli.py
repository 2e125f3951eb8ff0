"""The ``moeheads`` command-line tool.

Longer than 300 lines on purpose: one thin function per command, each with the help
text of every option; the work is done by :mod:`moeheads.api` and
:mod:`moeheads.experiments`.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from moeheads._version import __version__
from moeheads.errors import InterruptedRunError, MoeheadsError
from moeheads.runtime.allocator import keep_cpu_buffers

if TYPE_CHECKING:
    from moeheads.experiments.sweep import SweepPlan

app = typer.Typer(
    name="moeheads",
    help="Mixture-of-experts projection heads for self-supervised learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: --help stays fast (no rich rendering)
)
console = Console()
err_console = Console(stderr=True)

def _version_callback(value: bool) -> None:
    if value:
        console.print(f"moeheads {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True,
                     help="Show the version and exit."),
    ] = False,
) -> None:
    """Mixture-of-experts projection heads for self-supervised learning."""


@app.command("list")
def list_components(
    kind: Annotated[str, typer.Argument(help="routers, losses, backbones, datasets or loggers")],
    pattern: Annotated[str, typer.Argument(help="fnmatch pattern, e.g. 'top*'")] = "*",
) -> None:
    """List registered components of one kind, with a one-line description each."""
    from moeheads.registry import registry_for

    registry = registry_for(kind)
    rows = registry.describe(pattern)
    if not rows:
        err_console.print(f"no {kind} match {pattern!r}")
        raise typer.Exit(1)
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column(kind[:-1] if kind != "losses" else "loss")
    table.add_column("description")
    for name, description in rows:
        table.add_row(name, description)
    console.print(table)


@app.command("recipes")
def list_recipes() -> None:
    """List the recipes and sweeps shipped with moeheads (moeheads run quickstart,
    moeheads sweep paper_experts_stl10)."""
    from moeheads.recipe import catalog

    table = Table(show_header=True, header_style="bold", box=None)
    for column in ("recipe", "kind", "description"):
        table.add_column(column)
    for name, path in catalog.shipped_recipes().items():
        table.add_row(name, "recipe", catalog.describe_recipe(path))
    for name, path in catalog.shipped_sweeps().items():
        table.add_row(name, f"sweep ({catalog.count_sweep_runs(path)} runs)",
                      catalog.describe_recipe(path))
    console.print(table)


def _recipe_file(recipe: Path, sweep: bool = False) -> Path:
    """``recipe`` checked before PyTorch loads (a name or path that matches nothing fails at
    once): a bare name as it is (the API looks it up again), or the file a path names (a
    ``recipes/...`` path missing here: the shipped file, with a note)."""
    from moeheads.recipe.catalog import resolve_recipe_path

    found = resolve_recipe_path(recipe, sweep=sweep,
                                note=lambda line: err_console.print(line, markup=False,
                                                                    soft_wrap=True))
    return recipe if len(recipe.parts) == 1 else found


SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a recipe field: --set trainer.epochs=3 (repeatable)."),
]


@app.command()
def validate(
    recipe: Annotated[
        Path, typer.Argument(help="A recipe YAML file, or a shipped recipe's name (quickstart).")
    ],
    overrides: SetOption = None,
) -> None:
    """Check a recipe and print it with every default filled in."""
    recipe = _recipe_file(recipe)
    from moeheads.api import validate as validate_recipe
    from moeheads.recipe.io import dump_recipe

    resolved = validate_recipe(recipe, overrides or [])
    console.print(dump_recipe(resolved), highlight=False, markup=False)


@app.command()
def run(
    recipe: Annotated[
        Path, typer.Argument(help="A recipe YAML file, or a shipped recipe's name (quickstart).")
    ],
    overrides: SetOption = None,
    resume: Annotated[
        str, typer.Option(help="auto (continue the newest valid checkpoint), never (start over, "
                               "moving an earlier run aside), or a checkpoint path.")
    ] = "auto",
    allow_recipe_change: Annotated[
        bool, typer.Option(help="Continue a checkpoint written with a different recipe (e.g. a "
                                "lower learning rate); the change is recorded.")
    ] = False,
    requeue: Annotated[
        bool, typer.Option(help="Under Slurm: after SIGTERM or SIGUSR1 stopped the run with a "
                                "checkpoint, requeue the job (scontrol requeue), so it resumes.")
    ] = False,
) -> None:
    """Pretrain (and evaluate) as a recipe says; torchrun runs it on several processes.

    Ctrl-C, SIGTERM and SIGUSR1 stop it at the next step with a checkpoint (exit status
    128 + the signal's number: 130, 143, 138)."""
    recipe = _recipe_file(recipe)
    if os.environ.get("RANK", "0") == "0":  # at once, before PyTorch loads (seconds)
        console.print(f"moeheads {__version__}: starting {recipe} (loading PyTorch, checking "
                      "the recipe)", highlight=False, markup=False)
    from moeheads.api import run as run_recipe

    keep_cpu_buffers()
    try:
        run_recipe(recipe, overrides or [], resume=resume, console=console,
                   allow_recipe_change=allow_recipe_change)
    except InterruptedRunError as error:
        if requeue and error.signal_number != signal.SIGINT and os.environ.get("RANK", "0") == "0":
            from moeheads.runtime.slurm import requeue_this_job

            err_console.print(requeue_this_job(), highlight=False)
        raise


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory or a checkpoint sidecar.")],
    out: Annotated[Path, typer.Argument(help="Output .safetensors file (a .json sidecar too).")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Write the backbone weights alone, loadable into a plain torchvision model."""
    from moeheads.api import export as export_run

    path = export_run(run_dir, out, overwrite=overwrite)
    console.print(f"backbone written to {path}", highlight=False)


@app.command("eval")
def evaluate(
    run_or_checkpoint: Annotated[
        Path, typer.Argument(help="A run directory, checkpoint sidecar or backbone.safetensors.")
    ],
    protocol: Annotated[
        str, typer.Option(help="knn, nn1, linear, fewshot, cca, equivariance, routing or "
                               "detection.")
    ],
    options: Annotated[
        list[str] | None,
        typer.Option("--set", help="A protocol option: --set k=20 (repeatable; YAML values)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Evaluate a trained model with one protocol; the result goes to <run>/eval/."""
    from moeheads.api import evaluate as evaluate_protocol
    from moeheads.recipe.io import apply_overrides

    result = evaluate_protocol(run_or_checkpoint, protocol, device=device,
                               **apply_overrides({}, options or []))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 writes and shows it
        console.print(result.table())
        console.print(f"result written to {result.path}", highlight=False)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="The run directory.")]) -> None:
    """Regenerate a run's report.md (tables and plots) from its files."""
    from moeheads.api import report as write_report

    console.print(f"report written to {write_report(run_dir)}", highlight=False)


Launcher = Annotated[str | None, typer.Option(help="Submit through submitit: slurm or local.")]
Partition = Annotated[str | None, typer.Option(help="--launcher: Slurm partition.")]
Account = Annotated[str | None, typer.Option(help="--launcher: Slurm account.")]
Nodes = Annotated[int | None, typer.Option(help="--launcher: nodes per run.")]
Gpus = Annotated[int | None, typer.Option(help="--launcher: GPUs per node (a process each).")]
Cpus = Annotated[int | None, typer.Option(help="--launcher: CPU cores per process.")]
Mem = Annotated[int | None, typer.Option(help="--launcher: memory per node, GB.")]
Minutes = Annotated[int | None, typer.Option("--time", help="--launcher: minutes per attempt.")]
Parallel = Annotated[int | None, typer.Option(help="--launcher: runs at once.")]
Slurm = Annotated[list[str] | None, typer.Option(help="--launcher slurm: sbatch KEY=VALUE.")]


def _sweep_here(plan: SweepPlan, index: int | None, resume: str) -> None:
    """Run the sweep in this process, one run after another."""
    from moeheads.experiments.sweep import RunStatus, run_sweep

    def announce(status: RunStatus) -> None:
        verb = "skip (done)" if status.state == "done" else "run"
        console.print(f"[{status.run.index + 1}/{len(plan.runs)}] {verb}: {status.run.name}",
                      highlight=False)

    keep_cpu_buffers()
    try:
        run_sweep(plan, index=index, resume=resume, on_run=announce, console=console)
    except InterruptedRunError as error:
        raise InterruptedRunError(
            "sweep interrupted (the run has a checkpoint); the same moeheads sweep command "
            "skips the finished runs and continues this one", error.signal_number) from None
    console.print(f"sweep finished: {plan.folder} (moeheads compare {plan.folder})")


@app.command()
def sweep(
    recipe: Annotated[Path, typer.Argument(help="A recipe YAML file (a sweep: block optional), "
                                                "or a shipped sweep's or recipe's name.")],
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help="Sweep a field: --grid heads.num_experts=2,4,8 (repeatable)."),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Comma-separated seeds, e.g. 0,1,2 (each setting runs each).")
    ] = None,
    overrides: SetOption = None,
    name: Annotated[str | None, typer.Option(help="The sweep folder's name.")] = None,
    index: Annotated[
        int | None, typer.Option(help="Run only the run with this index (a job array's task).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="List the runs and their state; run nothing.")
                       ] = False,
    resume: Annotated[str, typer.Option(help="auto (continue an interrupted run) or never.")
                      ] = "auto",
    launcher: Launcher = None, partition: Partition = None, account: Account = None,
    nodes: Nodes = None, gpus_per_node: Gpus = None, cpus_per_task: Cpus = None,
    mem: Mem = None, time: Minutes = None, parallel: Parallel = None, slurm: Slurm = None,
) -> None:
    """Run the product of settings, grid and seeds: here one after another (resumable), or
    submitted through submitit (--launcher slurm|local)."""
    recipe = _recipe_file(recipe, sweep=True)
    from moeheads.experiments.sweep import load_sweep, run_status, status_table

    seed_list = [int(s) for s in seeds.split(",") if s.strip()] if seeds else []
    plan = load_sweep(recipe, overrides or [], grid or [], seed_list, name)
    if dry_run:
        statuses = run_status(plan)
        console.print(status_table(statuses))
        done = sum(s.state == "done" for s in statuses)  # soft_wrap: the path stays whole
        console.print(f"{len(statuses)} runs in {plan.folder} ({done} done)", soft_wrap=True)
    elif launcher is None:
        _sweep_here(plan, index, resume)
    else:
        from moeheads.experiments import launch_sweep

        launch_sweep(plan, launcher, dict(
            partition=partition, account=account, nodes=nodes, gpus_per_node=gpus_per_node,
            cpus_per_task=cpus_per_task, mem_gb=mem, time_min=time, parallel=parallel),
            slurm or [], console)


@app.command()
def compare(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Two or more run directories, or one sweep folder.")
    ],
) -> None:
    """Print runs side by side, or a sweep's settings with 95% intervals over seeds."""
    if len(run_dirs) == 1 and (run_dirs[0] / "sweep.yaml").is_file():
        from moeheads.api import compare_sweep

        result = compare_sweep(run_dirs[0])
        console.print(result.markdown_path.read_text(), highlight=False, markup=False)
        written = [result.markdown_path, result.csv_path, result.plot_path]
        console.print("written: " + ", ".join(str(p) for p in written if p), highlight=False)
        return
    from moeheads.api import compare_runs, convergence_plots

    console.print(compare_runs(run_dirs))
    written = convergence_plots(run_dirs)
    console.print("written: " + ", ".join(str(p) for p in written), highlight=False)


def main() -> None:
    """Entry point: runs the app and turns user errors into one line and exit code 2."""
    try:
        app()
    except MoeheadsError as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise SystemExit(error.exit_code if isinstance(error, InterruptedRunError) else 2) from None


if __name__ == "__main__":
    main()
