"""``glocal info``: versions, devices, weights, data and optional backends; or the resolved config."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from glocal_cli.cli.common import ConfigOpt, SetOpt, handle_errors
from glocal_cli.console import console


@handle_errors
def info_command(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    show_config: Annotated[bool, typer.Option("--show-config", help="Print the resolved config (with --config/--set) as YAML.")] = False,
    fields: Annotated[bool, typer.Option("--fields", help="List every config key with its type, default and meaning.")] = False,
) -> None:
    """Report the environment: versions, torch device and CUDA, weights and data found, optional backends."""
    if show_config or config or set_:
        import yaml

        from glocal_cli.config import resolve_config, to_dict

        cfg = resolve_config(config, set_ or ())
        typer.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False).rstrip())
        return
    if fields:
        from glocal_cli.config.io import describe_fields
        from glocal_cli.config.schema import GLocalConfig

        table = Table(title="config keys", show_lines=False)
        for col in ("key", "type", "default", "meaning"):
            table.add_column(col)
        for key, tp, default, doc in describe_fields(GLocalConfig):
            table.add_row(key, tp, repr(default), doc)
        console.print(table)
        return

    from glocal_cli.env_info import collect_info

    env = collect_info()
    for title, mapping in (("versions", env.versions), ("device", env.device), ("weights", env.weights),
                           ("data", env.data)):
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for key, value in mapping.items():
            style = "red" if value.startswith("missing") or value == "not installed" else ""
            table.add_row(key, f"[{style}]{value}[/{style}]" if style else value)
        console.print(table)
    table = Table(title="keypoint backends", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_column(overflow="fold")
    table.add_row("csv, json", "[green]usable[/green]", "annotation files (--keypoints csv|json --annotations ...)")
    for name, (usable, reason) in env.keypoint_backends.items():
        table.add_row(name, "[green]usable[/green]" if usable else "[red]not usable[/red]", reason)
    console.print(table)
    table = Table(title="optional backends", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, ok in env.backends.items():
        table.add_row(key, "[green]available[/green]" if ok else "[dim]not installed[/dim]")
    console.print(table)
