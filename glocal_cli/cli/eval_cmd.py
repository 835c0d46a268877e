"""``glocal eval``: the community's metrics under a named protocol, with a table and report files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from glocal_cli.cli.common import (
    BatchOpt,
    ConfigOpt,
    OverwriteOpt,
    SetOpt,
    WorkersOpt,
    handle_errors,
)
from glocal_cli.console import console, info, is_quiet, warn

PROTOCOL_HELP = (
    "clean (no padding, float PSNR, PNG only), paper (GLocal Table 1), gfla, pise, pidm. "
    "See docs/metrics.md for each recipe."
)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [s.strip() for s in text.split(",") if s.strip()]


@handle_errors
def eval_command(
    generated: Annotated[
        Path | None, typer.Option("--generated", "-g", help="Folder of generated images.")
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option("--reference", "-r", help="Folder of ground-truth images, or a prepared dataset folder."),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="Model weights folder: run pose transfer over --data's test pairs, then evaluate."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Prepared dataset (with --weights): pairs-test.csv, images/ ground truth, train.lst."),
    ] = None,
    pairs_limit: Annotated[
        int | None, typer.Option("--pairs-limit", min=1, help="With --weights: only the first N test pairs.")
    ] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", "-p", help=PROTOCOL_HELP)] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write metrics.json, report.md, per_image.csv, histogram.png, worst.png here."),
    ] = None,
    panel_dir: Annotated[
        Path | None,
        typer.Option("--panel-dir", help="Folder of panel images (e.g. [source | ground truth | output]) instead of "
                     "--generated/--reference."),
    ] = None,
    panels: Annotated[
        str, typer.Option("--panels", help="Panel layout left to right: source, target (ground truth), output, - (skip).")
    ] = "source,target,output",
    panel_pad: Annotated[
        int, typer.Option("--panel-pad", min=0, help="Pixels removed left and right of every panel (40: DeepFashion samples).")
    ] = 0,
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="Comma-separated subset of the protocol's metrics, e.g. ssim,psnr.")
    ] = None,
    fid_real: Annotated[
        Path | None,
        typer.Option("--fid-real", help="Real images (or a prepared dataset) for FID; default: the protocol's choice."),
    ] = None,
    inception_weights: Annotated[
        Path | None,
        typer.Option("--inception-weights", help="pytorch-fid's pt_inception-2015-12-05-*.pth (default: torch hub cache)."),
    ] = None,
    lpips_weights: Annotated[
        Path | None,
        typer.Option("--lpips-weights", help="lpips v0.1 linear heads (alex.pth / vgg.pth) or a folder with them."),
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1, or auto (CUDA when available).")] = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    worst_k: Annotated[int | None, typer.Option("--worst-k", min=0, help="Pairs shown in worst.png (0: none).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Evaluate generated images against ground truth (SSIM, PSNR, LPIPS, FID, IS) under a named protocol.

    Inputs: --generated with --reference (two folders), --panel-dir (panel images), or --weights with
    --data and --out (pose transfer over the dataset's test pairs into OUT/generated, then evaluation).
    """
    import dataclasses

    from glocal_cli.config import resolve_config
    from glocal_cli.errors import ConfigError
    from glocal_cli.evaluate import evaluate_model
    from glocal_cli.metrics.evaluate import evaluate
    from glocal_cli.metrics.report import metric_rows
    from glocal_cli.metrics.ssim import keep_freed_memory

    keep_freed_memory()  # this process is ours: keep SSIM's freed buffers for reuse (see its docstring)
    root = resolve_config(config, set_ or ())
    cfg = root.eval
    if workers is not None:
        try:
            cfg = dataclasses.replace(cfg, workers=workers)
        except ValueError as exc:
            raise ConfigError(f"eval: {exc}") from None
    failures: list[str] = []
    if weights is not None or data is not None:
        if weights is None or data is None or out is None:
            raise ConfigError("the model mode needs --weights DIR, --data DIR and --out DIR together")
        if generated is not None or reference is not None or panel_dir is not None:
            raise ConfigError("--weights/--data replace --generated/--reference/--panel-dir: give one input mode")
        result, summary = evaluate_model(
            weights, data, out=out, pairs_limit=pairs_limit, config=cfg, infer_config=root.infer,
            protocol=protocol, metrics=_split(metrics), fid_real=fid_real, inception_weights=inception_weights,
            lpips_weights=lpips_weights, device=device, batch_size=batch_size, worst_k=worst_k,
            overwrite=overwrite, progress=not is_quiet(),
        )
        failures = summary.failures
        info(f"inference: {summary.pairs} test pairs, {summary.generated} generated, {summary.kept} kept "
             f"(existing), {len(failures)} failed -> {Path(out) / 'generated'}")
    else:
        if pairs_limit is not None:
            raise ConfigError("--pairs-limit applies to the model mode (--weights with --data)")
        result = evaluate(
            generated,
            reference,
            panel_dir=panel_dir,
            panels=panels,
            panel_pad=panel_pad,
            config=cfg,
            protocol=protocol,
            metrics=_split(metrics),
            fid_real=fid_real,
            inception_weights=inception_weights,
            lpips_weights=lpips_weights,
            device=device,
            batch_size=batch_size,
            worst_k=worst_k,
            out=out,
            overwrite=overwrite,
            progress=not is_quiet(),
        )

    table = Table(title=f"glocal eval: protocol {result.protocol} ({len(result.names)} pairs)", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("std", justify="right")
    table.add_column("status")
    reasons: list[str] = []
    for m, (label, value, spread, _) in zip(result.metrics, metric_rows(result)):
        status = m.status
        if m.reason:
            if m.reason not in reasons:
                reasons.append(m.reason)
            status = f"{m.status} [{reasons.index(m.reason) + 1}]"
        style = {"failed": "red", "skipped": "yellow"}.get(m.status, "")
        table.add_row(escape(label), value, spread, escape(status), style=style)
    console.print(table)
    for n, reason in enumerate(reasons, start=1):
        console.print(f"[{n}] {reason}", markup=False)
    if result.fid_real:
        info(f"FID real set: {result.fid_real.get('source')} ({result.fid_real.get('count')} images, "
             f"cache {'hit' if result.fid_real.get('cache_hit') else 'written'})")
    for title, names in (
        ("generated files without a reference", result.unmatched_generated),
        ("reference files without a generated image", result.unmatched_reference),
        ("test pairs without a generated image", result.missing_expected),
    ):
        if names:
            shown = ", ".join(names[:5]) + (f", ... ({len(names) - 5} more)" if len(names) > 5 else "")
            warn(f"{len(names)} {title}: {shown}")
    if result.outputs:
        info(f"report: {Path(result.outputs['report']).parent}")
    for line in failures[:5]:
        console.print(f"inference failed: {line}", markup=False)
    if result.failed or failures:
        if result.failed:
            names = ", ".join(m.key for m in result.failed)
            console.print(f"[bold red]error:[/bold red] {len(result.failed)} metric(s) failed: {names}")
        if failures:
            console.print(f"[bold red]error:[/bold red] {len(failures)} test pair(s) could not be generated")
        raise typer.Exit(1)
