"""Shared option types and the error edge of every subcommand.

One vocabulary across subcommands (each one's ``--help`` lists its options): ``--config``, ``--set``, ``--data``,
``--out``, ``--weights``, ``--overwrite``, ``--batch-size``, ``--workers``, ``--device``, ``--seed``.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from glocal_cli.console import console, is_verbose
from glocal_cli.errors import GLocalError

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="Config preset name (tiny, synthetic-64, market-128, deepfashion-256) or YAML file."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one config value, e.g. --set train.lr=2e-4 (repeatable)."),
]
DataOpt = Annotated[Path, typer.Option("--data", help="A prepared dataset folder (the layout prepare-data writes).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Where to write; created if missing.")]
WeightsOpt = Annotated[
    Path | None,
    typer.Option("--weights", "-w", help="Weights folder (config.json + safetensors). Default: the shipped default weights."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Allow replacing existing outputs (never the default).")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", "-b", min=1, help="Images per batch.")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", "-j", min=0, help="Worker processes for loading data.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, or auto (CUDA when available).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]


def handle_errors(fn: F) -> F:
    """Turn domain errors into one red line and an exit code (traceback only with --verbose)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GLocalError as exc:
            if is_verbose():
                console.print(traceback.format_exc(), markup=False)
            console.print(f"[bold red]error:[/bold red] {exc}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
