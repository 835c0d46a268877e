"""What ``glocal transfer`` and ``glocal inpaint`` share: config, pipeline loading, the summary table."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from glocal_cli.console import console, info, warn

DEMO_PRESET = "synthetic-64"
"""Config of the randomly initialised model used when no weights exist."""


def weights_dir_for(weights: Path | None, task: str = "transfer") -> Path | None:
    """``--weights``, else the default weights of ``task`` (``transfer``, or ``inpaint``: ``weights/inpaint``
    when shipped); ``None`` when there are none (a random demo model)."""
    from glocal_cli.paths import default_inpaint_weights_dir, default_weights_dir

    if weights is not None:
        return weights
    return default_inpaint_weights_dir() if task == "inpaint" else default_weights_dir()


def infer_config(config: str | None, set_: list[str] | None, weights: Path | None = None, task: str = "transfer",
                 **cli: Any):
    """The resolved :class:`InferConfig`: the defaults, the settings the weights of ``task`` recommend
    (:func:`~glocal_cli.infer.config.weights_settings`), the preset/file and ``--set``, then explicit CLI
    options, each over the one before."""
    from glocal_cli.infer.config import resolve_infer_config

    cfg = resolve_infer_config(weights_dir_for(weights, task), config, set_ or ())
    changes = {k: v for k, v in cli.items() if v is not None}
    try:
        return dataclasses.replace(cfg, **changes)
    except ValueError as exc:
        from glocal_cli.errors import ConfigError

        raise ConfigError(f"infer: {exc}") from None


def body_config(config: str | None, set_: list[str] | None, body_model: str | None = None):
    """The resolved ``body`` section (:class:`~glocal_cli.body.config.BodyConfig`), ``--body-model`` last."""
    from glocal_cli.config import resolve_config

    cfg = resolve_config(config, set_ or ()).body
    return dataclasses.replace(cfg, model=body_model) if body_model else cfg


def load_pipeline(weights: Path | None, device: str, icfg: Any, seed: int, config: str | None = None,
                  set_: list[str] | None = None, body: Any = None, task: str = "transfer"):
    """The pipeline for ``--weights`` (or the default weights of ``task``: ``transfer``, or ``inpaint``, whose
    default is ``weights/inpaint`` when shipped); a random demo model when there are none.

    ``body`` is the :class:`~glocal_cli.body.config.BodyConfig` of ``--flow body3d|hybrid`` (default: the
    config's ``body`` section)."""
    from glocal_cli.infer.pipeline import GLocalPipeline

    sigma = None  # the weights' own pose sigma unless a config says otherwise
    if config or set_:
        from glocal_cli.config import resolve_config

        sigma = resolve_config(config, set_ or ()).data.pose_sigma
    if body is None:
        body = body_config(config, set_)
    directory = weights_dir_for(weights, task)
    if directory is not None:
        pipe = GLocalPipeline.from_pretrained(directory, device=device, config=icfg, sigma_at_256=sigma,
                                              body_config=body)
        info(f"weights: {directory} (frame {pipe.frame_hw[0]}x{pipe.frame_hw[1]}, device {pipe.device})")
        return pipe
    pipe = GLocalPipeline.from_config(DEMO_PRESET, seed=seed, device=device, config=icfg, body_config=body)
    console.print(
        f"[bold yellow]NO WEIGHTS FOUND[/bold yellow] (no --weights, no $GLOCAL_WEIGHTS, no weights/default): "
        f"using a [bold]randomly initialised[/bold] '{DEMO_PRESET}' model "
        f"({pipe.frame_hw[0]}x{pipe.frame_hw[1]}). The pictures show the pipeline working, "
        "not real results; train weights with `glocal train` and pass --weights DIR."
    )
    return pipe


def run_infer_job(spec: Any, icfg: Any, weights: Path | None, device: str, seed: int, config: str | None,
                  set_: list[str] | None, body: Any = None) -> None:
    """Check ``spec.out`` before loading anything, load the pipeline, run the job, render the report."""
    from glocal_cli.infer.batch import run_job
    from glocal_cli.infer.io import check_out_dir

    check_out_dir(spec.out)
    pipeline = load_pipeline(weights, device, icfg, seed, config, set_, body, task=spec.mode)
    render_report(run_job(pipeline, spec, icfg), spec.mode)


def render_report(report: Any, verb: str) -> None:
    """The summary table, the failures file, and exit code 1 when anything failed."""
    table = Table(title=f"{verb} summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("outputs", str(report.out)),
        ("planned", str(report.total) + (f" (rank {report.rank} of {report.world})" if report.world > 1 else "")),
        ("written", str(report.done)),
        ("skipped (exist)", str(report.skipped)),
        ("failed", f"[red]{report.failed}[/red]" if report.failed else "0"),
        ("warnings", str(report.warnings)),
        *([("notes", f"{len(report.notes)} (learned-flow fallbacks; in failures.csv, stage note)")]
          if getattr(report, "notes", None) else []),
        ("time", f"{report.seconds:.1f} s ({report.images_per_s:.1f} images/s)"),
    ]
    rows += [("video", str(v)) for v in report.videos]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if report.failures:
        shown = Table(title="failures", title_justify="left")
        for col in ("source", "target", "stage", "error"):
            shown.add_column(col, overflow="fold")
        for f in report.failures[:10]:
            shown.add_row(f.source, f.target, f.stage, f.error)
        console.print(shown)
        name = "failures.csv" if report.world == 1 else f"failures.rank{report.rank}.csv"
        warn(f"{report.failed} item(s) failed; all listed in {report.out / name}")
        raise typer.Exit(1)
