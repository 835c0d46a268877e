"""``glocal prepare-data deepfashion|market|folder``: real data -> the prepared dataset layout.

Each command parses its options, calls ONE library function of :mod:`glocal_cli.prepare`
and prints a summary table; the validation report lists every skipped file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from glocal_cli.body.config import BodyConfig
from glocal_cli.cli.common import OutOpt, OverwriteOpt, SeedOpt, handle_errors
from glocal_cli.console import console, is_quiet
from glocal_cli.data.backends import BACKEND_NAMES, BackendSpec
from glocal_cli.errors import ConfigError
from glocal_cli.prepare import (
    PrepareOptions,
    PrepareResult,
    parse_size,
    prepare_ccp,
    prepare_deepfashion,
    prepare_folder,
    prepare_market,
)

__all__ = ["ccp_command", "deepfashion_command", "folder_command", "market_command"]

RawOpt = Annotated[Path, typer.Option("--raw", help="The raw download (DeepFashion: the folder holding img/ or img_highres/; Market-1501: the folder holding bounding_box_train/, bounding_box_test/, query/, or the benchmark layout train/, test/ with the community CSVs beside them).")]
ImagesOpt = Annotated[Path, typer.Option("--images", help="A folder of photos, one person each (sub-folders: one person per sub-folder).")]
KeypointsOpt = Annotated[
    str | None,
    typer.Option("--keypoints", help=f"Keypoint backend: {'|'.join(BACKEND_NAMES)}. Default: csv when annotations are given, else auto."),
]
AnnotationsOpt = Annotated[
    list[Path] | None,
    typer.Option("--annotations", help="Keypoint annotations: a community CSV (repeatable; train and test) or, for --keypoints json, a folder of pose JSON files."),
]
PairsOpt = Annotated[Path | None, typer.Option("--pairs", help="Test pairs CSV (header from,to), e.g. fasion-pairs-test.csv.")]
SplitDirOpt = Annotated[
    Path | None,
    typer.Option("--split-dir", help="Folder with the community's train.lst, test.lst, *pairs-{train,test}.csv, *annotation-{train,test}.csv."),
]
ParsingOpt = Annotated[
    str | None,
    typer.Option("--parsing", help="Folder of parsing PNGs named <image stem>.png, or body3d: parsing rendered from the 3D body fitted to the keypoints (the fallback for data without parsing; a folder named body3d: give ./body3d). Without it, training predicts the source parsing."),
]
CorrespondenceOpt = Annotated[
    str,
    typer.Option("--correspondence", help="none, or body3d: fit the 3D body to every image (body/<stem>.npz, body/fits.csv) and write per-pair flow and visibility (correspondence/<target>__<source>.npz) for the pairs whose fits are good."),
]
BodyModelOpt = Annotated[str, typer.Option("--body-model", help="3D body model of --correspondence/--parsing body3d: anny (shipped), anny:PATH, or smplx:PATH (your SMPL/SMPL-X model file or folder).")]
PersonMaskOpt = Annotated[str, typer.Option("--person-mask", help="Mask refining --parsing body3d: auto (plain background for deepfashion, none otherwise), plain (flood fill of a plain studio background), none.")]
ParsingFormatOpt = Annotated[str, typer.Option("--parsing-format", help="spl8 (PISE's 8 classes), lip20 (LIP/CIHP 20 labels, converted), ccp59 (Clothing Co-Parsing's 59 labels, skin split by the keypoints), remap (use --remap).")]
RemapOpt = Annotated[str | None, typer.Option("--remap", help="User label remap 'source:class,...', e.g. '0:0,1:1,2:1,...' (classes 0..7).")]
WorkersOpt = Annotated[int, typer.Option("--workers", "-j", min=0, help="Worker processes (0: in this process).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Only report what would be done; write nothing.")]
ResampleOpt = Annotated[str, typer.Option("--resample", help="Resize filter: bicubic (default), area, lanczos, bilinear.")]
MinKpOpt = Annotated[int, typer.Option("--min-keypoints", min=0, help="Generated pairs skip images with fewer visible keypoints.")]
MaxPairsOpt = Annotated[int | None, typer.Option("--max-pairs-per-identity", min=1, help="Cap on generated pairs per identity.")]
TestFracOpt = Annotated[float, typer.Option("--test-fraction", min=0.0, max=0.95, help="Test share when the split is generated (by identity).")]
MmConfigOpt = Annotated[str | None, typer.Option("--mmpose-config", help="mmpose config file or model alias (e.g. rtmpose-m_8xb256-420e_coco-256x192).")]
MmCkptOpt = Annotated[str | None, typer.Option("--mmpose-checkpoint", help="mmpose checkpoint file or URL (an alias brings its own).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Device of the mmpose model and of the 3D body fits: cpu, cuda, cuda:1.")]


def _options(out: Path, size: str, keypoints: str | None, annotations: list[Path] | None, split_dir: Path | None,
             mm_config: str | None, mm_ckpt: str | None, device: str, parsing: str | None, parsing_format: str,
             remap: str | None, resample: str, workers: int, dry_run: bool, overwrite: bool, seed: int,
             min_keypoints: int, max_pairs: int | None, test_fraction: float = 0.1, correspondence: str = "none",
             body_model: str = "anny", person_mask: str = "auto") -> PrepareOptions:
    """The options every kind shares; the keypoint backend defaults to ``csv`` when annotations are
    given (``--annotations``, or ``*annotation-*.csv`` in ``--split-dir``), else ``auto``. ``--parsing
    body3d`` (the exact word) asks for parsing from the fitted 3D body; any other value is a folder."""
    if keypoints is None and split_dir is not None and any(split_dir.glob("*annotation-*.csv")):
        keypoints = "csv"
    name = keypoints or ("csv" if annotations else "auto")
    if name not in BACKEND_NAMES:
        raise ConfigError(f"--keypoints {name!r}: use one of {', '.join(BACKEND_NAMES)}")
    spec = BackendSpec(name, mmpose_config=mm_config, mmpose_checkpoint=mm_ckpt, device=device)
    h, w = parse_size(size)
    body_parsing = parsing == "body3d"
    return PrepareOptions(
        out=out, height=h, width=w, keypoints=spec, parsing_dir=None if body_parsing or parsing is None else Path(parsing),
        parsing_format=parsing_format, remap=remap,
        resample=resample, workers=workers, dry_run=dry_run, overwrite=overwrite, seed=seed,
        min_keypoints=min_keypoints, max_pairs_per_identity=max_pairs, test_fraction=test_fraction,
        correspondence=correspondence, body_parsing=body_parsing, body=BodyConfig(model=body_model),
        person_mask=person_mask, device=device,
    )


def render_result(result: PrepareResult) -> None:
    """Print the summary table (and the dry-run notes)."""
    if is_quiet():
        return
    title = f"prepare-data {result.kind}" + (" (dry run)" if result.dry_run else "")
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("item")
    table.add_column("value", overflow="fold")
    for key, value in result.rows():
        style = "yellow" if key.startswith("problem:") and not key.endswith("note") else None
        table.add_row(key, value, style=style)
    console.print(table)
    for note in result.notes:
        console.print(f"[dim]{note}[/dim]")


@handle_errors
def deepfashion_command(
    raw: RawOpt,
    out: OutOpt,
    size: Annotated[str, typer.Option("--size", help="Model frame HEIGHTxWIDTH (256x176; 512x352 too).")] = "256x176",
    keypoints: KeypointsOpt = None,
    annotations: AnnotationsOpt = None,
    pairs: PairsOpt = None,
    split_dir: SplitDirOpt = None,
    parsing: ParsingOpt = None,
    parsing_format: ParsingFormatOpt = "spl8",
    remap: RemapOpt = None,
    resample: ResampleOpt = "bicubic",
    workers: WorkersOpt = 0,
    dry_run: DryRunOpt = False,
    overwrite: OverwriteOpt = False,
    seed: SeedOpt = 0,
    min_keypoints: MinKpOpt = 0,
    max_pairs_per_identity: MaxPairsOpt = None,
    test_fraction: TestFracOpt = 0.1,
    mmpose_config: MmConfigOpt = None,
    mmpose_checkpoint: MmCkptOpt = None,
    device: DeviceOpt = "cpu",
    correspondence: CorrespondenceOpt = "none",
    body_model: BodyModelOpt = "anny",
    person_mask: PersonMaskOpt = "auto",
) -> None:
    """DeepFashion In-shop: raw download -> benchmark names, 256x176 frame, keypoints, pairs, report."""
    opts = _options(out, size, keypoints, annotations, split_dir, mmpose_config, mmpose_checkpoint, device, parsing,
                    parsing_format, remap, resample, workers, dry_run, overwrite, seed, min_keypoints,
                    max_pairs_per_identity, test_fraction, correspondence, body_model, person_mask)
    render_result(prepare_deepfashion(raw, opts, split_dir=split_dir, annotations=annotations or (), pairs_test=pairs))


@handle_errors
def market_command(
    raw: RawOpt,
    out: OutOpt,
    size: Annotated[str, typer.Option("--size", help="Model frame HEIGHTxWIDTH.")] = "128x64",
    keypoints: KeypointsOpt = None,
    annotations: AnnotationsOpt = None,
    pairs: PairsOpt = None,
    split_dir: SplitDirOpt = None,
    parsing: ParsingOpt = None,
    parsing_format: ParsingFormatOpt = "spl8",
    remap: RemapOpt = None,
    resample: ResampleOpt = "bicubic",
    workers: WorkersOpt = 0,
    dry_run: DryRunOpt = False,
    overwrite: OverwriteOpt = False,
    seed: SeedOpt = 0,
    min_keypoints: MinKpOpt = 0,
    max_pairs_per_identity: MaxPairsOpt = None,
    mmpose_config: MmConfigOpt = None,
    mmpose_checkpoint: MmCkptOpt = None,
    device: DeviceOpt = "cpu",
    correspondence: CorrespondenceOpt = "none",
    body_model: BodyModelOpt = "anny",
    person_mask: PersonMaskOpt = "auto",
) -> None:
    """Market-1501: raw crops -> 128x64 frame, keypoints, pairs within each person, report."""
    if split_dir is None and any(raw.glob("*annotation-*.csv")):
        split_dir = raw  # the benchmark layout: train/, test/ and the community CSVs side by side
    opts = _options(out, size, keypoints, annotations, split_dir, mmpose_config, mmpose_checkpoint, device, parsing,
                    parsing_format, remap, resample, workers, dry_run, overwrite, seed, min_keypoints,
                    max_pairs_per_identity, correspondence=correspondence, body_model=body_model,
                    person_mask=person_mask)
    render_result(prepare_market(raw, opts, split_dir=split_dir, annotations=annotations or (), pairs_test=pairs))


@handle_errors
def folder_command(
    images: ImagesOpt,
    out: OutOpt,
    size: Annotated[str, typer.Option("--size", help="Model frame HEIGHTxWIDTH.")] = "256x176",
    split: Annotated[str, typer.Option("--split", help="Split of every photo: test (batch inference) or train (fine-tuning).")] = "test",
    keypoints: KeypointsOpt = None,
    annotations: AnnotationsOpt = None,
    parsing: ParsingOpt = None,
    parsing_format: ParsingFormatOpt = "spl8",
    remap: RemapOpt = None,
    resample: ResampleOpt = "bicubic",
    workers: WorkersOpt = 0,
    dry_run: DryRunOpt = False,
    overwrite: OverwriteOpt = False,
    seed: SeedOpt = 0,
    min_keypoints: MinKpOpt = 0,
    max_pairs_per_identity: MaxPairsOpt = None,
    mmpose_config: MmConfigOpt = None,
    mmpose_checkpoint: MmCkptOpt = None,
    device: DeviceOpt = "cpu",
    correspondence: CorrespondenceOpt = "none",
    body_model: BodyModelOpt = "anny",
    person_mask: PersonMaskOpt = "auto",
) -> None:
    """Your own photos: person located from keypoints and centred, same layout as the benchmarks."""
    opts = _options(out, size, keypoints, annotations, None, mmpose_config, mmpose_checkpoint, device, parsing,
                    parsing_format, remap, resample, workers, dry_run, overwrite, seed, min_keypoints,
                    max_pairs_per_identity, correspondence=correspondence, body_model=body_model,
                    person_mask=person_mask)
    render_result(prepare_folder(images, opts, split=split, annotations=annotations or ()))


@handle_errors
def ccp_command(
    raw: Annotated[Path, typer.Option("--raw", help="The Clothing Co-Parsing folder (photos/, parsing/, labels.txt).")],
    out: OutOpt,
    size: Annotated[str, typer.Option("--size", help="Model frame HEIGHTxWIDTH (the weights' frame: 128x88 for the default).")] = "128x88",
    keypoints: KeypointsOpt = None,
    annotations: AnnotationsOpt = None,
    resample: ResampleOpt = "bicubic",
    workers: WorkersOpt = 0,
    dry_run: DryRunOpt = False,
    overwrite: OverwriteOpt = False,
    seed: SeedOpt = 0,
    test_fraction: TestFracOpt = 0.1,
    mmpose_config: MmConfigOpt = None,
    mmpose_checkpoint: MmCkptOpt = None,
    device: DeviceOpt = "cpu",
) -> None:
    """Clothing Co-Parsing: labelled street photos -> frame, keypoints, 8-class parsing (skin split), self pairs."""
    opts = _options(out, size, keypoints, annotations, None, mmpose_config, mmpose_checkpoint, device, None, "spl8",
                    None, resample, workers, dry_run, overwrite, seed, 0, None, test_fraction)
    render_result(prepare_ccp(raw, opts, annotations=annotations or ()))
