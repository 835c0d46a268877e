"""``glocal prepare-data synthetic``: render the SynthPeople dataset (exact ground truth, any size).

Parses the options, calls :func:`glocal_cli.synth.dataset.prepare_synthetic` (then, with
``--correspondence body3d``, :func:`glocal_cli.prepare.body3d.add_body3d` on the result) and
prints a summary.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from glocal_cli.cli.common import OutOpt, OverwriteOpt, SeedOpt, handle_errors
from glocal_cli.console import console, is_quiet
from glocal_cli.data.config import AnnySynthConfig
from glocal_cli.prepare.body3d import Body3dResult
from glocal_cli.synth.dataset import SyntheticSummary, prepare_synthetic

__all__ = ["render_summary", "synthetic_command"]


def render_summary(summary: SyntheticSummary, body3d: Body3dResult | None = None) -> None:
    """Print what was written (nothing with ``--quiet``)."""
    if is_quiet():
        return
    c = summary.counts
    table = Table(title="prepare-data synthetic (SynthPeople)", show_header=True, header_style="bold")
    table.add_column("item")
    table.add_column("value", overflow="fold")
    rows = [
        ("output", str(summary.out)),
        ("frame", f"{summary.height}x{summary.width}"),
        ("identities", f"{summary.identities} ({summary.rendered_identities} rendered, "
                       f"{summary.skipped_identities} already complete)"),
        ("images", str(summary.images)),
        ("train", f"{c.get('train', 0)} images, {c.get('train-identities', 0)} identities, "
                  f"{c.get('pairs-train', 0)} pairs"),
        ("test", f"{c.get('test', 0)} images, {c.get('test-identities', 0)} identities, "
                 f"{c.get('pairs-test', 0)} pairs"),
        ("views", ", ".join(f"{v} {summary.views.get(v, 0)}" for v in ("front", "side", "back"))),
        ("body", summary.body),
        ("poses", summary.pose_source),
        ("seed", str(summary.seed)),
    ]  # fmt: skip
    if summary.rendered_identities:
        rows.append(("speed", f"{summary.images_per_second:.0f} images/s with {summary.workers} worker(s)"))
    rows.append(("time", f"{summary.elapsed_s:.1f} s"))
    rows.append(("manifest", str(summary.manifest)))
    if summary.preview is not None:
        rows.append(("preview", str(summary.preview)))
    if body3d is not None:
        rows += body3d.rows()
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


@handle_errors
def synthetic_command(
    out: OutOpt,
    identities: Annotated[int, typer.Option("--identities", "-n", help="Number of people (identities).")] = 100,
    poses_per_identity: Annotated[
        int, typer.Option("--poses-per-identity", "-k", help="Images per identity (at least 2).")
    ] = 8,
    size: Annotated[str, typer.Option("--size", help="Frame HEIGHTxWIDTH, positive multiples of 4.")] = "256x176",
    seed: SeedOpt = 0,
    workers: Annotated[
        int, typer.Option("--workers", "-j", min=0, help="Worker processes (0: one per CPU, at most 8; 1: in this process).")
    ] = 0,
    preview: Annotated[bool, typer.Option("--preview", help="Also write preview.png: samples with parsing and skeletons.")] = False,
    overwrite: OverwriteOpt = False,
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", min=0.0, max=0.95, help="Share of identities in the test split.")
    ] = 0.1,
    correspondence: Annotated[
        str, typer.Option("--correspondence", help="none, or body3d: also fit the 3D body to every image's keypoints "
                                                   "and write per-pair correspondence (optional here: the surface maps "
                                                   "are exact)."),
    ] = "none",
    body_model: Annotated[
        str, typer.Option("--body-model", help="3D body model of --correspondence body3d: anny, anny:PATH, smplx:PATH."),
    ] = "anny",
    device: Annotated[str, typer.Option("--device", help="Device of the 3D body fits: cpu, cuda, cuda:1.")] = "cpu",
    body: Annotated[
        str, typer.Option("--body", help="flat: fast 2-D figures (default); anny: 3-D Anny body shapes in clothes, "
                                         "with exact per-pair correspondence files.")
    ] = "flat",
    real_pose_fraction: Annotated[
        float, typer.Option("--real-pose-fraction", min=0.0, max=1.0,
                            help="--body anny: share of poses fitted to real DeepFashion keypoints (the rest sampled).")
    ] = 0.5,
    pairs_per_image: Annotated[
        int, typer.Option("--pairs-per-image", min=1, max=2,
                          help="--body anny: correspondence pairs per target image (1: next pose; 2: also half-way).")
    ] = 2,
) -> None:
    """SynthPeople: procedural people with exact parsing, keypoints and dense correspondence.

    Deterministic by --seed (byte-identical files for any --workers); an interrupted run resumes
    where it stopped when run again with the same options. --body anny renders Anny body shapes
    (men, women, children, elders) in clothes, with exact per-pair correspondence files.
    """
    from glocal_cli.body.config import BodyConfig
    from glocal_cli.errors import ConfigError
    from glocal_cli.prepare.body3d import CORRESPONDENCE_CHOICES, Body3dOptions, add_body3d

    if correspondence not in CORRESPONDENCE_CHOICES:
        raise ConfigError(f"--correspondence {correspondence!r}: use one of {', '.join(CORRESPONDENCE_CHOICES)}")
    if body == "anny" and correspondence != "none":
        raise ConfigError("--body anny writes exact correspondence itself; drop --correspondence")
    body3d = Body3dOptions(correspondence=True, body=BodyConfig(model=body_model), device=device,
                           overwrite=overwrite) if correspondence == "body3d" else None
    if body3d is not None:
        from glocal_cli.body import load_body_model

        load_body_model(body_model)  # an unusable body model fails before the rendering
    summary = prepare_synthetic(
        out,
        identities=identities,
        poses_per_identity=poses_per_identity,
        size=size,
        seed=seed,
        workers=workers or None,
        preview=preview,
        overwrite=overwrite,
        test_fraction=test_fraction,
        body=body,
        anny=AnnySynthConfig(real_pose_fraction=real_pose_fraction, pairs_per_image=pairs_per_image)
        if body == "anny" else None,
    )
    render_summary(summary, add_body3d(out, body3d) if body3d is not None else None)
