"""``glocal transfer``: re-pose person photos to target poses (one image or folders of thousands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glocal_cli.cli._infer_common import body_config, infer_config, run_infer_job
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

SourceOpt = Annotated[Path, typer.Option("--source", "-s", help="Source photo, or a folder of photos.")]
SourcePoseOpt = Annotated[
    Path | None,
    typer.Option("--source-pose", help="Source keypoints: a pose JSON (one source), a folder of <stem>.json, or a "
                 "keypoint CSV. Default: the <stem>.json sidecar, else the keypoint backend."),
]
SourceParsingOpt = Annotated[
    Path | None,
    typer.Option("--source-parsing", help="Source parsing label PNG (one source) or a folder of <stem>_parsing.png. "
                 "Default: the sidecar, else estimated by the semantic network."),
]
PairsOpt = Annotated[Path | None, typer.Option("--pairs", help="CSV with header from,to: which source goes to which pose.")]
GridOpt = Annotated[bool | None, typer.Option("--grid/--no-grid", help="Also write source | poses | parsing | result.")]
SaveParsingOpt = Annotated[bool | None, typer.Option("--save-parsing/--no-save-parsing", help="Also write the parsing picture.")]
PasteBackOpt = Annotated[
    bool | None,
    typer.Option("--paste-back/--no-paste-back", help="Write results in the source photo's canvas, not the model frame."),
]
FpsOpt = Annotated[float | None, typer.Option("--fps", min=0.1, help="Frames per second of --video.")]
FlowOpt = Annotated[
    str | None,
    typer.Option("--flow", help="Geometry: body3d (a 3D body fitted to both poses), learned (the model's flow "
                 "estimator) or hybrid (the 3D flow refined by the estimator; needs model.flow_refine weights). "
                 "Default: infer.flow."),
]
BodyModelOpt = Annotated[
    str | None,
    typer.Option("--body-model", help="Body model of --flow body3d|hybrid: anny (shipped) or smplx:PATH "
                 "(a SMPL / SMPL-H / SMPL-X file you downloaded). Default: body.model."),
]
PreviewOpt = Annotated[
    bool | None,
    typer.Option("--preview/--no-preview", help="Also write <name>_preview.png: fitted mesh over source and result, "
                 "parts, flow, visibility, warped source."),
]


@handle_errors
def transfer_command(
    source: SourceOpt,
    out: OutOpt,
    pose: Annotated[
        Path | None,
        typer.Option("--pose", "-p", help="Target pose: OpenPose/COCO/mmpose JSON, a folder of them, or a keypoint CSV."),
    ] = None,
    pose_from: Annotated[
        Path | None,
        typer.Option("--pose-from", help="Take the target pose from another photo (or a folder): keypoint backend."),
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
    save_flow: Annotated[bool | None, typer.Option("--save-flow/--no-save-flow", help="Also write the flow picture.")] = None,
    preview: PreviewOpt = None,
    flow: FlowOpt = None,
    body_model: BodyModelOpt = None,
    paste_back: PasteBackOpt = None,
    video: Annotated[Path | None, typer.Option("--video", help="Also write the frames as out.mp4 or out.gif.")] = None,
    fps: FpsOpt = None,
    overwrite: OverwriteOpt = False,
    seed: SeedOpt = 0,
) -> None:
    """Re-pose the person of each source photo to each target pose (or the --pairs rows)."""
    from glocal_cli.infer.batch import JobSpec

    icfg = infer_config(config, set_, weights, "transfer", batch_size=batch_size, workers=workers, grid=grid,
                        save_parsing=save_parsing, save_flow=save_flow, paste_back=paste_back, fps=fps, seed=seed,
                        flow=flow, preview=preview)
    body = body_config(config, set_, body_model)
    spec = JobSpec("transfer", source, out, pose=pose, pose_from=pose_from, source_pose=source_pose,
                   source_parsing=source_parsing, pairs=pairs, video=video, overwrite=overwrite)
    run_infer_job(spec, icfg, weights, device, seed, config, set_, body)
