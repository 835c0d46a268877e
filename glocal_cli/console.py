"""The one rich console of the package, and progress-bar helpers."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, highlight=False)
"""Everything glocal prints for humans goes here (stderr), so stdout stays clean for data."""

_state = {"verbose": False, "quiet": False}


def set_verbosity(verbose: bool = False, quiet: bool = False) -> None:
    """Set the global verbosity (called once by the CLI callback)."""
    _state["verbose"] = verbose
    _state["quiet"] = quiet


def is_verbose() -> bool:
    return _state["verbose"]


def is_quiet() -> bool:
    return _state["quiet"]


def info(message: str) -> None:
    """Print an informational line unless ``--quiet``."""
    if not _state["quiet"]:
        console.print(message)


def warn(message: str) -> None:
    """Print a warning line (always shown)."""
    console.print(f"[yellow]warning:[/yellow] {message}")


def debug(message: str) -> None:
    """Print a line only with ``--verbose``."""
    if _state["verbose"]:
        console.print(f"[dim]{message}[/dim]")


def make_progress(transient: bool = False) -> Progress:
    """A progress bar with the columns used by every long job (disabled with ``--quiet``)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=transient,
        disable=_state["quiet"],
    )
