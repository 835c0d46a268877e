"""``glocal inpaint``: fill irregular, semantic or given holes of person photos."""

from __future__ import annotations

from typing import Annotated

import typer

from glocal_cli.cli._infer_common import infer_config, run_infer_job
from glocal_cli.cli.common import (
    BatchOpt,
    ConfigOpt,
    DeviceOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    SetOpt,
    WeightsOpt,
    WorkersOpt,
    handle_errors,
)
from glocal_cli.cli.transfer_cmd import (
    GridOpt,
    PairsOpt,
    SaveParsingOpt,
    SourceOpt,
    SourceParsingOpt,
    SourcePoseOpt,
)


@handle_errors
def inpaint_command(
    source: SourceOpt,
    out: OutOpt,
    mask: Annotated[
        str,
        typer.Option("--mask", "-m", help="irregular (generated, seeded), semantic (remove --classes), a mask image "
                     "(white = hole), a folder of <stem>.png masks, or 'file' (each source's <stem>_mask.png)."),
    ] = "irregular",
    classes: Annotated[
        str | None, typer.Option("--classes", help="Classes a semantic mask removes, e.g. hair,upper.")
    ] = None,
    ratio_bin: Annotated[
        int | None,
        typer.Option("--ratio-bin", min=0, max=5, help="Irregular hole area: 0 = 1-10%, 1 = 10-20%, ..., 5 = 50-60%."),
    ] = None,
    source_pose: SourcePoseOpt = None,
    source_parsing: SourceParsingOpt = None,
    pairs: PairsOpt = None,
    weights: WeightsOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    device: DeviceOpt = "auto",
    grid: GridOpt = None,
    save_parsing: SaveParsingOpt = None,
    paste_back: Annotated[
        bool | None,
        typer.Option("--paste-back/--no-paste-back", help="Write the photo at its own size with only the holes "
                     "filled, every other pixel kept (default); --no-paste-back writes the model-frame picture."),
    ] = None,
    overwrite: OverwriteOpt = False,
    seed: SeedOpt = 0,
) -> None:
    """Fill holes in each source photo; writes <stem>.png and the masked input <stem>_masked.png."""
    from glocal_cli.data.masks import resolve_class_ids
    from glocal_cli.infer.batch import JobSpec

    class_names = None
    if classes is not None:
        resolve_class_ids(classes)  # fail early on an unknown name
        class_names = tuple(c.strip() for c in classes.split(",") if c.strip())
    output = None if paste_back is None else ("source" if paste_back else "frame")
    icfg = infer_config(config, set_, weights, "inpaint", batch_size=batch_size, workers=workers, grid=grid,
                        save_parsing=save_parsing, inpaint_output=output, seed=seed, mask_classes=class_names,
                        mask_ratio_bin=ratio_bin, mask=mask)
    spec = JobSpec("inpaint", source, out, source_pose=source_pose, source_parsing=source_parsing, pairs=pairs,
                   mask=mask, overwrite=overwrite)
    run_infer_job(spec, icfg, weights, device, seed, config, set_)
