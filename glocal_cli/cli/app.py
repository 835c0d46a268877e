"""The ``glocal`` root command: global options and the subcommand table.

Each subcommand lives in its own module and only parses options, calls one library function and
renders the result; domain errors become exit codes in :func:`glocal_cli.cli.common.handle_errors`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from glocal_cli import __version__
from glocal_cli.cli.eval_cmd import eval_command
from glocal_cli.cli.info_cmd import info_command
from glocal_cli.cli.inpaint_cmd import inpaint_command
from glocal_cli.cli.prepare_real import ccp_command, deepfashion_command, folder_command, market_command
from glocal_cli.cli.prepare_synthetic import synthetic_command
from glocal_cli.cli.serve_cmd import serve_command
from glocal_cli.cli.train_cmd import train_command
from glocal_cli.cli.transfer_cmd import transfer_command
from glocal_cli.console import console, set_verbosity

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


app.command("info", help="Versions, torch device and CUDA, weights and data found, optional backends.")(info_command)
app.add_typer(prepare_app, name="prepare-data")
prepare_app.command("synthetic", help="SynthPeople: procedural people with exact ground truth.")(synthetic_command)
prepare_app.command("deepfashion", help="DeepFashion In-shop from its raw download.")(deepfashion_command)
prepare_app.command("market", help="Market-1501 person crops.")(market_command)
prepare_app.command("folder", help="A folder of your own person photos.")(folder_command)
prepare_app.command("ccp", help="Clothing Co-Parsing street photos with pixel labels (parsing, inpainting).")(ccp_command)
app.command("train", help="Staged training (semantic, flow, generator, inpaint) on one CPU or many GPUs.")(train_command)
app.command("transfer", help="Re-pose person photos to target poses (one image or whole folders).")(transfer_command)
app.command("inpaint", help="Fill in missing regions of person photos (irregular, semantic or given masks).")(inpaint_command)
app.command("eval", help="Metrics (SSIM, PSNR, FID, IS, LPIPS) under named protocols.")(eval_command)
app.command("serve", help="A local web page: drag a skeleton, see the re-posed person, paint and fill holes.")(serve_command)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        raise SystemExit(130) from None
