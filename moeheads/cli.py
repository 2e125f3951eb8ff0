"""The ``moeheads`` command-line tool."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from moeheads import __version__
from moeheads.errors import MoeheadsError
from moeheads.registry import Registry

app = typer.Typer(
    name="moeheads",
    help="Mixture-of-experts projection heads for self-supervised learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

#: Component kinds listed by ``moeheads list``: kind -> "module:REGISTRY".
COMPONENT_KINDS: dict[str, str] = {
    "routers": "moeheads.routers:ROUTERS",
    "losses": "moeheads.losses:LOSSES",
    "backbones": "moeheads.backbones:BACKBONES",
    "datasets": "moeheads.data:DATASETS",
}


def registry_for(kind: str) -> Registry:
    """The registry behind a component kind of ``moeheads list``."""
    if kind not in COMPONENT_KINDS:
        raise MoeheadsError(
            f"unknown component kind {kind!r}; choose one of {', '.join(COMPONENT_KINDS)}"
        )
    module_name, attribute = COMPONENT_KINDS[kind].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise MoeheadsError(f"no {kind} are available in moeheads {__version__}") from None
    return getattr(module, attribute)


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
    kind: Annotated[str, typer.Argument(help="routers, losses, backbones or datasets")],
    pattern: Annotated[str, typer.Argument(help="fnmatch pattern, e.g. 'top*'")] = "*",
) -> None:
    """List registered components of one kind, with a one-line description each."""
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


def main() -> None:
    """Entry point: runs the app and turns user errors into one line and exit code 2."""
    try:
        app()
    except MoeheadsError as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
