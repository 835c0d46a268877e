"""``glocal serve``: a local web page to re-pose a person by dragging a skeleton (docs/serve.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from glocal_cli.cli.common import ConfigOpt, DeviceOpt, SeedOpt, SetOpt, WeightsOpt, handle_errors

HostOpt = Annotated[
    str | None,
    typer.Option("--host", help="Address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)."),
]
PortOpt = Annotated[int | None, typer.Option("--port", min=1, max=65535, help="TCP port (default 8765).")]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Folder for pose files, animations and saved results (default outputs/serve)."),
]
ExamplesOpt = Annotated[
    Path | None,
    typer.Option("--examples", help="Folder with sources/ and poses/ offered by the page (default: the repo's examples/)."),
]
MaxUploadOpt = Annotated[
    float | None, typer.Option("--max-upload-mb", min=0.01, help="Largest accepted upload in MB (default 10).")
]
KeypointsOpt = Annotated[
    str | None,
    typer.Option("--keypoints", help="Detector for uploaded photos: auto, mediapipe, mmpose, or none (drag a default pose)."),
]


@handle_errors
def serve_command(
    weights: WeightsOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    out: OutOpt = None,
    examples: ExamplesOpt = None,
    max_upload_mb: MaxUploadOpt = None,
    keypoints: KeypointsOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
) -> None:
    """Serve a page on which you upload a photo, drag its skeleton and see the re-posed person."""
    from glocal_cli.cli._infer_common import infer_config, load_pipeline
    from glocal_cli.config import resolve_config
    from glocal_cli.errors import ConfigError, InputError
    from glocal_cli.serve.app import check_port, run_server

    scfg = resolve_config(config, set_ or ()).serve
    cli = {"host": host, "port": port, "out": None if out is None else str(out), "max_upload_mb": max_upload_mb,
           "keypoints": keypoints, "examples": None if examples is None else str(examples)}
    try:
        scfg = dataclasses.replace(scfg, **{k: v for k, v in cli.items() if v is not None})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"serve: {exc}") from None
    if scfg.keypoints not in ("auto", "mediapipe", "mmpose", "none"):
        raise ConfigError(f"--keypoints {scfg.keypoints!r}: use auto, mediapipe, mmpose or none")
    examples_dir = _examples_dir(scfg.examples)
    if scfg.examples and examples_dir is None:
        raise InputError(f"{scfg.examples}: examples folder not found (it needs sources/ and/or poses/)")
    check_port(scfg.host, scfg.port)  # fail before the weights are loaded
    icfg = infer_config(config, set_, weights)
    pipeline = load_pipeline(weights, device, icfg, seed, config, set_)
    inpaint_pipeline = None
    if weights is None:  # the default inpainting weights (weights/inpaint) when they are not the transfer ones
        from glocal_cli.paths import default_inpaint_weights_dir, default_weights_dir

        if default_inpaint_weights_dir() not in (None, default_weights_dir()):
            inpaint_pipeline = load_pipeline(None, device, infer_config(config, set_, None, "inpaint"), seed, config,
                                             set_, task="inpaint")
    run_server(pipeline, scfg, examples_dir, inpaint_pipeline=inpaint_pipeline)


def _examples_dir(setting: str) -> Path | None:
    from glocal_cli.paths import REPO_DIR

    path = Path(setting) if setting else REPO_DIR / "examples"
    if (path / "sources").is_dir() or (path / "poses").is_dir():
        return path
    return None
