"""The ``glocal`` root command: global options and the subcommand table.

Each subcommand lives in its own module and only parses options, calls one library function and
renders the result; domain errors become exit codes in :func:`glocal_cli.cli.common.handle_errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from glocal_cli import __version__
from glocal_cli.console import console, set_verbosity

Command = Callable[..., Any]
"""A subcommand's function (its Typer options are its parameters)."""


# each loader imports one command module, when that command runs


def _info() -> Command:
    from glocal_cli.cli.info_cmd import info_command
    return info_command


def _train() -> Command:
    from glocal_cli.cli.train_cmd import train_command
    return train_command


def _transfer() -> Command:
    from glocal_cli.cli.transfer_cmd import transfer_command
    return transfer_command


def _inpaint() -> Command:
    from glocal_cli.cli.inpaint_cmd import inpaint_command
    return inpaint_command


def _eval() -> Command:
    from glocal_cli.cli.eval_cmd import eval_command
    return eval_command


def _serve() -> Command:
    from glocal_cli.cli.serve_cmd import serve_command
    return serve_command


def _prepare(name: str) -> Callable[[], Command]:
    def load() -> Command:
        from glocal_cli.cli import prepare_real, prepare_synthetic
        return {"synthetic": prepare_synthetic.synthetic_command, "deepfashion": prepare_real.deepfashion_command,
                "market": prepare_real.market_command, "folder": prepare_real.folder_command,
                "ccp": prepare_real.ccp_command}[name]
    return load


COMMANDS = {
    "info": (_info, "Versions, torch device and CUDA, weights and data found, optional backends."),
    "train": (_train, "Staged training (semantic, flow, generator, inpaint) on one CPU or many GPUs."),
    "transfer": (_transfer, "Re-pose person photos to target poses (one image or whole folders)."),
    "inpaint": (_inpaint, "Fill in missing regions of person photos (irregular, semantic or given masks)."),
    "eval": (_eval, "Metrics (SSIM, PSNR, FID, IS, LPIPS) under named protocols."),
    "serve": (_serve, "A local web page: drag a skeleton, see the re-posed person, paint and fill holes."),
}
"""The subcommands: name -> (loader of its function, help). A command's module, and the library it calls, is
imported only when that command runs (or for the full help): ``glocal transfer`` does not load training, dataset
preparation or the web server."""
PREPARE_COMMANDS = {
    "synthetic": (_prepare("synthetic"), "SynthPeople: procedural people with exact ground truth."),
    "deepfashion": (_prepare("deepfashion"), "DeepFashion In-shop from its raw download."),
    "market": (_prepare("market"), "Market-1501 person crops."),
    "folder": (_prepare("folder"), "A folder of your own person photos."),
    "ccp": (_prepare("ccp"), "Clothing Co-Parsing street photos with pixel labels (parsing, inpainting)."),
}
"""``glocal prepare-data <kind>``, likewise."""
ROOT_HELP = "GLocal person image generation: pose transfer and texture inpainting."


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"glocal {__version__}")
        raise typer.Exit()


def build_app(only: str | None = None) -> typer.Typer:
    """The root command with every subcommand, or with ``only`` (one name of :data:`COMMANDS` or
    ``prepare-data``) and the root options."""
    app = typer.Typer(
        name="glocal",
        help=ROOT_HELP,
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

    for name, (load, text) in COMMANDS.items():
        if only is None or only == name:
            app.command(name, help=text)(load())
    if only is None or only == "prepare-data":
        app.add_typer(prepare_app, name="prepare-data")
        for name, (load, text) in PREPARE_COMMANDS.items():
            prepare_app.command(name, help=text)(load())
    return app


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named on the command line (after the root options), if it is one of ours."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS or arg == "prepare-data" else None
        if arg in ("--help", "-h", "--version"):
            return None
    return None


def __getattr__(name: str):  # noqa: ANN202 - ``from glocal_cli.cli.app import app``: the full command line
    if name == "app":
        return build_app()
    raise AttributeError(name)


QUICK_EXIT = ("transfer", "inpaint")
"""Commands whose process ends with ``os._exit`` once their results are written and the console flushed: tearing
down a process that imported torch takes ~0.5 s on a 2-core CPU (its extension modules' destructors), a
quarter of a one-photo ``glocal transfer``. Their jobs join every writer thread and loader worker before they
return, so nothing is left to clean up (a torchrun job, ``WORLD_SIZE`` > 1, exits normally)."""


def main() -> None:
    """Console-script entry point."""
    import os
    import sys

    command = _command_in(sys.argv[1:])
    try:
        build_app(command)()
        code: object = 0
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        code = 130
    except SystemExit as exc:  # click's standalone mode ends every command with one
        code = exc.code
    if command in QUICK_EXIT and isinstance(code, int | None) and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
    raise SystemExit(code)
