"""The ``glocal`` root command: global options and the subcommand table.

Each subcommand lives in its own module and only parses options, calls one library function and
renders the result; domain errors become exit codes in :func:`glocal_cli.cli.common.handle_errors`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from glocal_cli import __version__
from glocal_cli.cli.common import handle_errors
from glocal_cli.cli.info_cmd import info_command
from glocal_cli.cli.inpaint_cmd import inpaint_command
from glocal_cli.cli.transfer_cmd import transfer_command
from glocal_cli.console import console, set_verbosity
from glocal_cli.errors import NotAvailableError

app = typer.Typer(
    name="glocal",
    help="GLocal person image generation: pose transfer and texture inpainting.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
prepare_app = typer.Typer(
    help="Prepare a dataset folder (images, keypoints, parsing, pairs, manifest).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"glocal {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More output; tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    """GLocal person image generation: pose transfer and texture inpainting."""
    set_verbosity(verbose=verbose, quiet=quiet)


def _not_yet(name: str, issue: int):
    @handle_errors
    def command(ctx: typer.Context) -> None:
        raise NotAvailableError(f"'glocal {name}' is not available yet (tracked in issue {issue})")

    command.__doc__ = f"(not available yet: issue {issue})"
    return command


app.command("info", help="Versions, torch device and CUDA, weights and data found, optional backends.")(info_command)
app.add_typer(prepare_app, name="prepare-data")
prepare_app.command("synthetic", context_settings=_PASSTHROUGH)(_not_yet("prepare-data synthetic", 3))
prepare_app.command("deepfashion", context_settings=_PASSTHROUGH)(_not_yet("prepare-data deepfashion", 8))
prepare_app.command("market", context_settings=_PASSTHROUGH)(_not_yet("prepare-data market", 8))
prepare_app.command("folder", context_settings=_PASSTHROUGH)(_not_yet("prepare-data folder", 8))
app.command("train", context_settings=_PASSTHROUGH)(_not_yet("train", 5))
app.command("transfer", help="Re-pose person photos to target poses (one image or whole folders).")(transfer_command)
app.command("inpaint", help="Fill in missing regions of person photos (irregular, semantic or given masks).")(inpaint_command)
app.command("eval", context_settings=_PASSTHROUGH)(_not_yet("eval", 7))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        raise SystemExit(130) from None
