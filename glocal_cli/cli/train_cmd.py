"""``glocal train``: staged training on one CPU or many GPUs (torchrun), resumable and observable.

Parses options, calls :func:`glocal_cli.train.trainer.train` once, renders a summary table. ``--data`` may be
repeated: the run then trains on every folder at once (mixed batches, ``data.mix_weights``).
Multi-GPU: ``torchrun --nproc_per_node=8 -m glocal_cli train ...`` (see docs/training.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from glocal_cli.cli.common import (
    BatchOpt,
    ConfigOpt,
    DeviceOpt,
    OverwriteOpt,
    SetOpt,
    WorkersOpt,
    handle_errors,
)
from glocal_cli.console import console, is_quiet

DataListOpt = Annotated[
    list[Path],
    typer.Option("--data", help="A prepared dataset folder (the layout prepare-data writes); repeat it to train on "
                 "several at once, mixed in every batch by data.mix_weights (default: by their training pairs)."),
]
StageOpt = Annotated[
    str,
    typer.Option("--stage", help="semantic, flow, generator, inpaint, or all (train.stages in order)."),
]


@handle_errors
def train_command(
    data: DataListOpt,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    stage: StageOpt = "all",
    out: Annotated[
        Path, typer.Option("--out", "--runs-dir", "-o", help="Folder that holds the runs (runs/<name>/).")
    ] = Path("runs"),
    name: Annotated[
        str | None, typer.Option("--name", help="Run name (default: train.run_name or <config>-<date>-<time>).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="'auto' (the run's latest checkpoints) or a run folder / checkpoint file."),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", "-w", help="Initialise the networks from a weights folder.")
    ] = None,
    device: DeviceOpt = "auto",
    workers: WorkersOpt = None,
    batch_size: BatchOpt = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (train.seed).")] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="Cap every stage at N optimiser steps.")
    ] = None,
    overwrite: OverwriteOpt = False,
    reschedule: Annotated[
        bool,
        typer.Option("--reschedule", help="On resume, replace the learning-rate schedule saved in the checkpoint by "
                     "the one this call asks for (e.g. another --max-steps); by default the saved one is kept."),
    ] = False,
) -> None:
    """Train GLocal on a prepared dataset (or several: repeat --data): semantic -> flow -> generator -> inpaint.

    Checkpoints, logs, TensorBoard events and the exported weights go to [bold]<out>/<name>/[/bold].
    Under [bold]torchrun[/bold] every process runs this command; rank 0 alone logs and saves.
    """
    from glocal_cli.train.trainer import train

    result = train(
        data[0] if len(data) == 1 else data,
        config=config,
        overrides=set_ or (),
        stage=stage,
        runs_dir=out,
        name=name,
        resume=resume,
        device=device,
        workers=workers,
        batch_size=batch_size,
        seed=seed,
        max_steps=max_steps,
        overwrite=overwrite,
        weights=weights,
        reschedule=reschedule,
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if not is_quiet():
        table = Table(title=f"run {result.run_dir}", title_justify="left")
        for col in ("stage", "steps", "images/s", "best score", "validation"):
            table.add_column(col)
        for r in result.stages:
            metrics = " ".join(f"{k.split('/', 1)[-1]} {v:.4g}" for k, v in r.metrics.items()
                               if not k.rsplit("/", 1)[-1].startswith("baseline"))
            status = "skipped (complete)" if r.skipped else ("interrupted" if r.interrupted else "")
            table.add_row(r.stage, f"{r.step}/{r.total_steps} {status}".strip(), f"{r.images_per_second:.1f}",
                          "" if r.best_score is None else f"{r.best_score:.4g}", metrics)
        console.print(table)
    if result.interrupted:
        console.print(f"[yellow]interrupted[/yellow]: state saved; continue with "
                      f"[bold]glocal train {' '.join(f'--data {d}' for d in data)} --name {result.run_dir.name} --out {out} --resume auto[/bold]")
        raise typer.Exit(130)
    if not is_quiet():
        for label, folder in (("weights", result.weights_dir), ("inpaint weights", result.inpaint_weights_dir)):
            if folder is not None:
                console.print(f"{label}: [bold]{folder}[/bold]")


__all__ = ["train_command"]
